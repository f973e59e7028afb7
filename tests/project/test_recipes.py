"""The recipes' shell side: the one option parser (recipes/parse_options.sh), and every recipe and data_prep/ script
parsing, answering --help and keeping its options. Nothing here runs a stage (`--help` exits before
recipes/common.sh, so it neither installs nor trains)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PARSER = REPO / "recipes" / "parse_options.sh"
SCRIPTS = sorted([REPO / "recipes" / "asr.sh", *REPO.glob("recipes/*/run.sh"), REPO / "recipes/pathways/dev_study.sh",
                  *REPO.glob("data_prep/*.sh")])

# Options (and defaults) that README.md, benchmarks/ and tests/ call the recipes with: renaming one breaks them.
KEPT_OPTIONS = {
    "recipes/asr.sh": {
        "stage": "3", "stop_stage": "6", "langs": "", "train_config": "conf/train.yaml", "exp": "", "data": "data",
        "tokens": "", "test_sets": "", "train_opt": None, "decode_opt": None},
    "recipes/mini/run.sh": {
        "stage": "1", "stop_stage": "7", "langs": "de fr es it", "exp": "exp/multi", "sparsity": "0.7",
        "prune_steps": "200", "synth_opt": None, "train_opt": None},
    "recipes/commonvoice/run.sh": {"stage": "1", "stop_stage": "6", "lang": "", "cv_root": "", "train_opt": None},
    "recipes/aishell/run.sh": {
        "stage": "1", "stop_stage": "6", "db": "downloads",
        "url": "https://www.openslr.org/resources/33/data_aishell.tgz", "train_opt": None},
    "recipes/crosslingual/run.sh": {
        "stage": "1", "stop_stage": "6", "layers": "flat joinap_linear joinap_nonlinear", "fewshot_utts": "200",
        "synth_opt": None, "train_opt": None, "finetune_opt": None},
    "recipes/autodfp/run.sh": {
        "stage": "1", "stop_stage": "3", "checkpoint": "../mini/exp/multi/checkpoints/best.ckpt",
        "data": "../mini/data", "langs": "de fr es it", "ratios": "0.8 0.6 0.5", "methods": "l1 merge agent random",
        "episodes": "150", "seeds": "0", "budget": "params+flops+latency", "width_multiple": "16", "exp": "exp/autodfp"},
    "recipes/pathways/run.sh": {
        "stage": "0", "seeds": "0 1 2", "seed_sparsities": "0.7 0.9", "test_utts": "400", "stop_stage": "3", "dense_checkpoint": "../mini/exp/multi/checkpoints/best.ckpt",
        "data": "../mini/data", "langs": "de fr es it", "sparsities": "0.7 0.5 0.9",
        "methods": "omp lth lsp adaptive lap static", "dap_runs": "middle:saliency",
        "dap_compare_runs": "middle:magnitude middle:scores lap:saliency lsp:saliency", "compare_sparsity": "0.7",
        "budget_scale": "1.0", "heatmap_sparsity": "0.7", "exp": "exp", "results": "results", "set": None,
        "unseen": "pl", "unseen_data": "../crosslingual/data", "unseen_model": "dap_middle_saliency",
        "fewshot_config": "../crosslingual/conf/finetune.yaml", "fewshot_set": None},
}


def run(script: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A script with one option of each kind that prints what it parsed, and a nested script it passes to."""
    (tmp_path / "nested.sh").write_text(f"""#!/usr/bin/env bash
# The nested script.
set -euo pipefail
source {PARSER}
option beam 10 "beam size"
option langs "" "languages"
parse_options "$@"
""")
    (tmp_path / "nested.sh").chmod(0o755)
    script = tmp_path / "tiny.sh"
    script.write_text(f"""#!/usr/bin/env bash
# A tiny recipe.
#   stage 1  nothing
set -euo pipefail
source {PARSER}
option stage 1 "first stage to run"
option stop_stage 2 "last stage to run"
option_list train_opt "KEY=VALUE"
pass_through nested_opts nested.sh langs
parse_options "$@"
echo "stage=$stage stop_stage=$stop_stage"
echo "train_opt=${{train_opt[*]/#/--set=}}"
echo "nested=${{nested_opts[*]}}"
""")
    return script


def test_parser_sets_declared_options(tiny):
    result = run(tiny, "--stage", "3", "--stop-stage=5", "--train_opt", "a=1", "--train_opt=b=2", "--beam", "4")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "stage=3 stop_stage=5", "train_opt=--set=a=1 --set=b=2", "nested=--beam 4"]


def test_parser_keeps_defaults(tiny):
    assert run(tiny).stdout.splitlines() == ["stage=1 stop_stage=2", "train_opt=", "nested="]


@pytest.mark.parametrize("args", [["--stgae", "3"], ["--stgae"], ["--langs", "de"]])
def test_parser_rejects_unknown_option(tiny, args):
    """Misspelt, without a value, or one the script sets itself for the nested script (--langs)."""
    result = run(tiny, *args)
    assert result.returncode == 2
    assert f"unknown option {args[0]}" in result.stderr
    assert "known: --stage --stop_stage --train_opt; passed on to nested.sh: --beam" in result.stderr


def test_parser_errors_on_missing_value_and_positional(tiny):
    missing = run(tiny, "--stage")
    assert missing.returncode == 2 and "option --stage needs a value" in missing.stderr
    positional = run(tiny, "3")
    assert positional.returncode == 2 and "unexpected argument '3'" in positional.stderr


def test_parser_help(tiny):
    result = run(tiny, "--help")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["A tiny recipe.", "  stage 1  nothing"]
    assert any(line.split() == ["--stage", "first", "stage", "to", "run", '[default:', '"1"]'] for line in lines)
    assert any(line.startswith("  --train_opt") and "(repeatable)" in line for line in lines)
    passed = lines[lines.index("Passed on to nested.sh:") + 1:]
    assert [line.split()[0] for line in passed] == ["--beam"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_script_syntax(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "shift 2" not in script.read_text(), "options are parsed by recipes/parse_options.sh"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_script_help(script):
    """--help answers without installing or running anything, and lists the options with their defaults."""
    result = run(script, "--help")
    assert result.returncode == 0, result.stderr
    assert "bootstrap:" not in result.stdout + result.stderr  # ./bootstrap.sh prefixes what it says with this
    header, _, options = result.stdout.partition("\nOptions:\n")
    assert header.strip() and "  --stage " in options
    # its own options and those it passes on to a nested script
    lines = {line.split()[0]: line for line in options.splitlines() if line.startswith("  --")}
    for name, default in KEPT_OPTIONS.get(str(script.relative_to(REPO)), {}).items():
        line = lines.get(f"--{name}")
        assert line is not None, f"{script.name} lost its option --{name}"
        if default is not None:
            assert line.endswith(f'[default: "{default}"]'), line
