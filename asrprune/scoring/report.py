"""``asrprune report``: one table from the results of several decoding directories, optionally with the ratio of
two families of test sets' error rates (e.g. the synthetic corpus's transfer test over its test set)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from asrprune.cli_options import add_out
from asrprune.scoring.result_table import ResultRow, markdown_table, read_results


def ratio_rows(rows: Sequence[ResultRow], numerator: str, denominator: str
               ) -> list[tuple[str, str, float, float, float]]:
    """``(metric, language, Err(<denominator>_<lang>), Err(<numerator>_<lang>), ratio)`` for every language and
    metric that both data sets have (data set names ``<prefix>_<lang>``), then per metric a ``"mean"`` row (mean
    error rates over those languages and their ratio). Error rates in percent; the ratio is numerator / denominator
    (inf where the denominator is 0)."""
    by_name = {(row.dataset, row.metric): row.counts.error_rate for row in rows}
    pairs: dict[str, list[tuple[str, float, float]]] = {}
    for (dataset, metric), rate in by_name.items():
        if dataset.startswith(f"{numerator}_"):
            lang = dataset[len(numerator) + 1:]
            if (f"{denominator}_{lang}", metric) in by_name:
                pairs.setdefault(metric, []).append((lang, by_name[f"{denominator}_{lang}", metric], rate))
    found = []
    for metric, languages in pairs.items():
        means = tuple(sum(values) / len(languages) for values in zip(*(v[1:] for v in languages)))
        found += [(metric, lang, low, high, high / low if low else float("inf"))
                  for lang, low, high in [*languages, ("mean", *means)]]
    return found


def ratio_table(rows: Sequence[ResultRow], numerator: str, denominator: str) -> str:
    """:func:`ratio_rows` as a markdown table."""
    lines = [f"| language | metric | {denominator} Err | {numerator} Err | ratio |", "|---|---|---|---|---|"]
    for metric, lang, low, high, ratio in ratio_rows(rows, numerator, denominator):
        lines.append(f"| {lang} | {metric} | {low:.1f} | {high:.1f} | {ratio:.2f} |")
    return "\n".join(lines) + "\n"


def run_cli(args: argparse.Namespace) -> None:
    rows = [row for directory in args.decode_dirs for row in read_results(directory)]
    table = markdown_table(rows)
    if args.ratio:
        table += "\n" + ratio_table(rows, *args.ratio)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table, encoding="utf-8")
    print(f"wrote {args.out} ({len(rows)} rows)")


def register_cli(subparsers) -> None:
    """Add the ``report`` sub-command."""
    parser = subparsers.add_parser(
        "report",
        description="Reads results.json from each decoding directory (written by asrprune decode) and writes one "
        "ESPnet-style table (Snt, Wrd, Corr, Sub, Del, Ins, Err, S.Err) with a row per data set and metric; with "
        "--ratio NUM DEN, a second table of Err(NUM_<lang>) / Err(DEN_<lang>) per language and metric.",
        epilog="example: asrprune report --out exp/multi/RESULTS.md --ratio transfer test exp/multi/decode_*",
    )
    parser.add_argument("decode_dirs", nargs="+", help="decoding directories (asrprune decode --out)")
    add_out(parser, "markdown file to write")
    parser.add_argument("--ratio", nargs=2, metavar=("NUM", "DEN"),
                        help="data set name prefixes, e.g. transfer test: ratio of their error rates per language")
    parser.set_defaults(func=run_cli)
