"""The ``asrprune`` command line: ``--help`` lists the stages without importing them, each stage imports and builds
its own parser with its options and example, and an unknown stage is argparse's error."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from asrprune import cli

# Sub-commands of stages that have them: each has its own --help.
SUBCOMMANDS = {"prune": ("run", "export", "report", "grow", "unseen-table")}
HEAVY_MODULES = ("torch", "torchaudio", "numpy", "lightning", "espnet2", "stable_baselines3")


def test_help_lists_every_stage_without_importing_one():
    """``asrprune --help`` in a fresh interpreter: every stage and its one-line help, and no stage module, torch,
    numpy or Lightning loaded."""
    script = (
        "import sys\n"
        "from asrprune import cli\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit as stop:\n"
        "    assert stop.code == 0, stop.code\n"
        "stages = [stage.module for stage in cli.STAGES]\n"
        f"print('LOADED', sorted(name for name in {HEAVY_MODULES!r} + tuple(stages) if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={"COLUMNS": "400", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout
    for stage in cli.STAGES:
        assert f"\n    {stage.name}" in result.stdout and stage.help in result.stdout


def test_build_parser_without_a_stage_imports_no_stage():
    script = "import sys, asrprune.cli as c; c.build_parser(); print(sorted(set(sys.modules) & {'torch', 'numpy'}))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stderr


@pytest.mark.parametrize("stage", cli.STAGES, ids=lambda stage: stage.name)
def test_each_stage_registers_and_has_help_with_an_example(stage, capsys, monkeypatch):
    """A stage's module registers exactly its sub-command, and ``asrprune <stage> --help`` (and each of its
    sub-commands' ``--help``) shows its options and an example."""
    monkeypatch.setenv("COLUMNS", "400")
    parser = cli.build_parser(stage.name)
    commands = [[stage.name]] + [[stage.name, command] for command in SUBCOMMANDS.get(stage.name, ())]
    for argv in commands:
        with pytest.raises(SystemExit) as stop:
            parser.parse_args([*argv, "--help"])
        assert stop.value.code == 0
        shown = capsys.readouterr().out
        assert shown.startswith(f"usage: asrprune {' '.join(argv)} ")
        assert "-h, --help" in shown and "example: asrprune " + stage.name in shown


def parsers(parser: argparse.ArgumentParser):
    """``parser`` and, depth first, every parser of its sub-commands."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from parsers(child)


def test_every_checkpoint_option_is_checked_before_the_stage_runs():
    """Options added with cli_options.add_checkpoint (metavar CKPT) are the ones asrprune.cli opens first."""
    checkpoint_options = {
        action.dest
        for stage in cli.STAGES
        for parser in parsers(cli.build_parser(stage.name))
        for action in parser._actions
        if action.metavar == "CKPT"
    }
    assert checkpoint_options == set(cli.CHECKPOINT_ARGUMENTS)


def test_unknown_stage_is_argparse_error(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["no-such-stage", "--help"])
    assert stop.value.code == 2
    assert "argument <stage>: invalid choice: 'no-such-stage'" in capsys.readouterr().err


def test_missing_stage_is_argparse_error(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([])
    assert stop.value.code == 2
    assert "the following arguments are required: <stage>" in capsys.readouterr().err


def test_stage_input_errors_are_printed_as_one_line(capsys):
    """The stages' own bad-input errors share asrprune.errors.InputError, which the command line catches without
    importing the stages; a bug (any other exception) keeps its traceback."""
    from asrprune.data.audio import AudioReadError
    from asrprune.synth.corpus import SynthError
    from asrprune.synth.espeak import EspeakError

    assert all(issubclass(error, cli.InputError) for error in (AudioReadError, SynthError, EspeakError))
    args = argparse.Namespace(command="synth", func=lambda args: (_ for _ in ()).throw(SynthError("corpora/: no\nway")))
    parser = argparse.ArgumentParser()
    parser.set_defaults(**vars(args))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "build_parser", lambda stage: parser)
        assert cli.main([]) == 1
        assert capsys.readouterr().err == "asrprune synth: error: corpora/: no; way\n"
        parser.set_defaults(func=lambda args: (_ for _ in ()).throw(RuntimeError("bug")))
        with pytest.raises(RuntimeError, match="bug"):
            cli.main([])


def test_bad_input_is_one_line(tmp_path, capsys):
    """A stage's bad-input error is one line naming the stage (here a missing data directory)."""
    argv = ["subset-data", "--data", str(tmp_path / "missing"), "--utts", "1", "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("asrprune subset-data: error: ")
