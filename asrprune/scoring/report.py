"""``asrprune report``: one table from the results of several decoding directories."""
from __future__ import annotations

import argparse
from pathlib import Path

from asrprune.cli_options import add_out
from asrprune.scoring.result_table import markdown_table, read_results


def run_cli(args: argparse.Namespace) -> None:
    rows = [row for directory in args.decode_dirs for row in read_results(directory)]
    table = markdown_table(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table, encoding="utf-8")
    print(f"wrote {args.out} ({len(rows)} rows)")


def register_cli(subparsers) -> None:
    """Add the ``report`` sub-command."""
    parser = subparsers.add_parser(
        "report",
        description="Reads results.json from each decoding directory (written by asrprune decode) and writes one "
        "ESPnet-style table (Snt, Wrd, Corr, Sub, Del, Ins, Err, S.Err) with a row per data set and metric.",
        epilog="example: asrprune report --out exp/multi/RESULTS.md exp/multi/decode_test_*",
    )
    parser.add_argument("decode_dirs", nargs="+", help="decoding directories (asrprune decode --out)")
    add_out(parser, "markdown file to write")
    parser.set_defaults(func=run_cli)
