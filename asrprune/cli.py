"""The ``asrprune`` command line: one sub-command per pipeline stage.

Stages, in recipe order: ``synth`` (synthetic corpus), ``prep-commonvoice`` / ``prep-aishell`` / ``prep-hf``
(Kaldi data directories with phone transcripts), ``make-inventory`` (shared phone set) or ``make-subwords``
(sentencepiece targets instead of phones), ``dump-features`` (optional feature cache), ``train``, ``train-lm``
(optional word n-gram), ``decode``, ``report``; for new languages ``add-language``, ``subset-data`` and
``crosslingual-table``; for compression ``prune`` (masks: pathways, Dynamic ASR Pathways, baselines) and
``autodfp`` / ``autodfp-table`` (data-free structured pruning).
Run ``asrprune <stage> --help`` for each one's options and an example.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys

from asrprune.environment import EnvironmentMismatch, check_torch_pair

try:
    check_torch_pair()
except EnvironmentMismatch as mismatch:  # before any stage imports torchaudio: one line, not a traceback
    sys.exit(f"asrprune: error: {mismatch}")

from asrprune.data import subset, targets
from asrprune.data.audio import AudioReadError
from asrprune.decoding import decode_dir, ngram_lm
from asrprune.phonology import inventory_cli
from asrprune.pruning.autodfp import cli as autodfp_cli, table as autodfp_table
from asrprune.pruning.masking import cli as masking_cli
from asrprune.scoring import crosslingual_table, report
from asrprune.training import add_language, dump_features, train
from asrprune.training.checkpoints import read_checkpoint
from asrprune.corpora import aishell, commonvoice, hf_datasets
from asrprune.synth import corpus as synth
from asrprune.synth.espeak import EspeakError
from asrprune.synth.corpus import SynthError  # noqa: E402  (the stages import torchaudio, checked above)

STAGES = (
    synth, commonvoice, aishell, hf_datasets, subset, inventory_cli, targets, dump_features, train, add_language,
    ngram_lm, decode_dir, report, crosslingual_table, autodfp_cli, autodfp_table,
    masking_cli,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asrprune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<stage>", required=True)
    for stage in STAGES:
        stage.register_cli(subparsers)
    return parser


# Errors that mean bad input (a missing file, a malformed table or config, an unknown symbol, an unreadable
# checkpoint, a full disk): the message names the file, line, field or setting, so it is printed without a
# traceback. Set ASRPRUNE_TRACEBACK=1 to see the traceback anyway.
INPUT_ERRORS = (OSError, ValueError, KeyError, AudioReadError, SynthError, EspeakError)
# Arguments that name a checkpoint to read: each is opened (memory-mapped) before the stage does any work.
CHECKPOINT_ARGUMENTS = ("checkpoint", "dense_checkpoint")


def check_checkpoint_arguments(args: argparse.Namespace) -> None:
    """Stop with one line naming a checkpoint argument's file if it is missing, empty, truncated or not one."""
    for name in CHECKPOINT_ARGUMENTS:
        if getattr(args, name, None) is not None:
            read_checkpoint(getattr(args, name), mmap=True)


def error_line(error: BaseException) -> str:
    """The one line shown for a bad-input error: its message (a KeyError's without quotes), lines joined; a full
    disk that the message does not explain gets what to do."""
    message = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    message = "; ".join(line.strip() for line in message.splitlines() if line.strip())
    if isinstance(error, OSError) and error.errno == errno.ENOSPC and "free some space" not in message:
        message += " (free some space and re-run the same command: it resumes)"
    return message


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
