"""The ``asrprune`` command line: one sub-command per pipeline stage.

Stages, in recipe order: ``synth`` (synthetic corpus), ``prep-commonvoice`` / ``prep-aishell`` / ``prep-hf``
(Kaldi data directories with phone transcripts), ``make-inventory`` (shared phone set), ``train``, ``train-lm`` (optional word n-gram), ``decode``,
``report``. Run ``asrprune <stage> --help`` for each one's options and an example.
"""
from __future__ import annotations

import argparse
import sys

from asrprune.decoding import decode_dir, ngram_lm
from asrprune.phonology import inventory_cli
from asrprune.scoring import report
from asrprune.training import train
from data_prep import aishell, commonvoice, hf_datasets, synth

STAGES = (synth, commonvoice, aishell, hf_datasets, inventory_cli, train, ngram_lm, decode_dir, report)


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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
