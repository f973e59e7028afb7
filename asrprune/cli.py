"""The ``asrprune`` command line: one sub-command per pipeline stage, listed below in recipe order.

Prepare data (``synth``, ``prep-*``, ``make-inventory`` or ``make-subwords``, optionally ``dump-features``), train and
score (``train``, optionally ``train-lm``, ``decode``, ``report``), add languages (``add-language``, ``subset-data``,
``crosslingual-table``) and compress (``prune``: masks, pathways, Dynamic ASR Pathways and baselines; ``autodfp`` /
``autodfp-table``: data-free structured pruning).
Run ``asrprune <stage> --help`` for each one's options and an example.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from types import ModuleType
from typing import NamedTuple

from asrprune.environment import EnvironmentMismatch, check_torch_pair
from asrprune.errors import InputError


class Stage(NamedTuple):
    """One sub-command: its ``name``, the ``module`` whose ``register_cli(subparsers)`` adds its parser and whose
    import is deferred until the stage is named, and the one-line ``help`` that ``asrprune --help`` lists."""

    name: str
    module: str
    help: str


STAGES = (
    Stage("synth", "asrprune.synth.corpus",
          "generate the synthetic espeak-ng corpus (Common Voice / AISHELL formats)"),
    Stage("prep-commonvoice", "asrprune.corpora.commonvoice",
          "import a Common Voice release folder into Kaldi data directories"),
    Stage("prep-aishell", "asrprune.corpora.aishell",
          "import AISHELL-1 into Kaldi data directories (language zh)"),
    Stage("prep-hf", "asrprune.corpora.hf_datasets",
          "import a Hugging Face dataset (hub name, save_to_disk folder or parquet) into Kaldi data dirs"),
    Stage("make-inventory", "asrprune.phonology.inventory_cli",
          "write the shared phone inventory (phones.txt) of several lexicons"),
    Stage("make-subwords", "asrprune.data.targets",
          "train a sentencepiece character/BPE/unigram model as CTC targets instead of phones"),
    Stage("dump-features", "asrprune.training.dump_features",
          "fill the filterbank cache of a training config with all CPU cores (optional, speeds up training)"),
    Stage("train", "asrprune.training.train",
          "train (or resume) a multilingual phone-CTC conformer"),
    Stage("train-lm", "asrprune.decoding.ngram_lm",
          "train a word n-gram LM (ARPA) from data directory transcripts"),
    Stage("decode", "asrprune.decoding.decode_dir",
          "decode a data directory with a checkpoint and score it (PER, WER/CER)"),
    Stage("report", "asrprune.scoring.report",
          "collect the results.json of decoding directories into one markdown table"),
    Stage("add-language", "asrprune.training.add_language",
          "turn a trained checkpoint into one that also serves a new language (zero-shot, or to fine-tune)"),
    Stage("subset-data", "asrprune.data.subset",
          "write a random subset of a data directory (e.g. a few-shot training set)"),
    Stage("crosslingual-table", "asrprune.scoring.crosslingual_table",
          "table of PER/WER per output layer for multilingual, zero-shot and few-shot decoding"),
    Stage("prune", "asrprune.pruning.masking.cli",
          "unstructured pruning with masks: baselines, adaptive masking, (Dynamic) ASR pathways"),
    Stage("autodfp", "asrprune.pruning.autodfp.cli",
          "data-free structured pruning (uniform L1, Neuron-Merging-like folding, or the AutoDFP SAC agent)"),
    Stage("autodfp-table", "asrprune.pruning.autodfp.table",
          "table of pruned models: PER per language, parameters, size, MACs, decoding speed-up, search time"),
)
STAGES_BY_NAME = {stage.name: stage for stage in STAGES}

# Errors that mean bad input (a missing file, a malformed table or config, an unknown symbol, an unreadable
# checkpoint, a full disk): the message names the file, line, field or setting, so it is printed without a
# traceback. Set ASRPRUNE_TRACEBACK=1 to see the traceback anyway.
INPUT_ERRORS = (OSError, ValueError, KeyError, InputError)
# Arguments that name a checkpoint to read: each is opened (memory-mapped) before the stage does any work.
CHECKPOINT_ARGUMENTS = ("checkpoint", "dense_checkpoint")


def import_stage(stage: Stage) -> ModuleType:
    """Import a stage's module. If torch and torchaudio do not load together, raise the one-line EnvironmentMismatch
    instead of the import's traceback (or, for a stage that imported torchaudio fine, instead of a failure mid-run
    when torchaudio loads its compiled library)."""
    try:
        module = importlib.import_module(stage.module)
    except Exception:
        check_torch_pair()  # a broken torch/torchaudio pair is the usual cause: then say so in one line
        raise
    if "torchaudio" in sys.modules:
        check_torch_pair()
    return module


def build_parser(stage: str | None = None) -> argparse.ArgumentParser:
    """The ``asrprune`` parser: every stage listed with its one-line help, and ``stage`` (a name from STAGES) with
    its full options. Only that stage's module is imported; without one, nothing heavier than argparse is."""
    parser = argparse.ArgumentParser(
        prog="asrprune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<stage>", required=True)
    for entry in STAGES:
        if entry.name == stage:
            import_stage(entry).register_cli(subparsers)
        else:
            subparsers.add_parser(entry.name, help=entry.help)
    return parser


def named_stage(argv: list[str]) -> str | None:
    """The stage the command line names: its first argument, if that is a stage (the top-level parser has no options
    but --help, so a stage can only come first); None for ``--help``, no argument or an unknown stage, which argparse
    then reports."""
    return argv[0] if argv and argv[0] in STAGES_BY_NAME else None


def check_checkpoint_arguments(args: argparse.Namespace) -> None:
    """Stop with one line naming a checkpoint argument's file if it is missing, empty, truncated or not one."""
    paths = [getattr(args, name) for name in CHECKPOINT_ARGUMENTS if getattr(args, name, None) is not None]
    if paths:
        from asrprune.files import read_checkpoint  # loads torch: imported only when a stage reads a checkpoint

        for path in paths:
            read_checkpoint(path, mmap=True)


def error_line(error: BaseException) -> str:
    """The one line shown for a bad-input error: its message (a KeyError's without quotes), lines joined; a full
    disk that the message does not explain gets what to do."""
    message = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    message = "; ".join(line.strip() for line in message.splitlines() if line.strip())
    if isinstance(error, OSError) and error.errno == errno.ENOSPC and "free some space" not in message:
        message += " (free some space and re-run the same command: it resumes)"
    return message


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(named_stage(argv))
    except EnvironmentMismatch as mismatch:  # one line, not the stage import's traceback
        sys.exit(f"asrprune: error: {mismatch}")
    args = parser.parse_args(argv)
    try:
        check_checkpoint_arguments(args)
        args.func(args)
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except INPUT_ERRORS as error:
        if os.environ.get("ASRPRUNE_TRACEBACK"):
            raise
        print(f"asrprune {args.command}: error: {error_line(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
