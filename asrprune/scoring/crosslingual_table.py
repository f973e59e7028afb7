"""``asrprune crosslingual-table``: one table of output layers x languages x settings (multilingual, zero-shot,
few-shot), read from the decoding directories the crosslingual recipe writes."""
from __future__ import annotations

import argparse
from pathlib import Path

from asrprune.cli_options import add_exp, add_out
from asrprune.scoring.result_table import read_results

SETTINGS = (("multilingual", "decode_test_{lang}"), ("zero-shot", "decode_zero_shot_test_{lang}"),
            ("few-shot", "decode_few_shot_test_{lang}"))


def crosslingual_table(exp: Path, layers: list[str], seen: list[str], unseen: list[str]) -> str:
    """Markdown: one row per (setting, language, metric), one column per output layer; '-' where not decoded."""
    header = "| setting | language | metric | " + " | ".join(layers) + " |"
    lines = [header, "|" + "---|" * (3 + len(layers))]
    for setting, pattern in SETTINGS:
        for lang in seen if setting == "multilingual" else unseen:
            rates: dict[str, dict[str, float]] = {}
            for layer in layers:
                directory = exp / f"multi_{layer}" / pattern.format(lang=lang)
                if (directory / "results.json").is_file():
                    for row in read_results(directory):
                        rates.setdefault(row.metric, {})[layer] = row.counts.error_rate
            for metric, by_layer in rates.items():
                cells = [f"{by_layer[layer]:.1f}" if layer in by_layer else "-" for layer in layers]
                lines.append(f"| {setting} | {lang} | {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_cli(args: argparse.Namespace) -> None:
    table = crosslingual_table(Path(args.exp), args.layers, args.seen, args.unseen)
    Path(args.out).write_text(table, encoding="utf-8")
    print(f"wrote {args.out}")


def register_cli(subparsers) -> None:
    """Add the ``crosslingual-table`` sub-command."""
    parser = subparsers.add_parser(
        "crosslingual-table",
        description="Collect EXP/multi_<layer>/decode_{,zero_shot_,few_shot_}test_<lang>/results.json into one "
        "markdown table (error rates in %%), as written by recipes/crosslingual/run.sh.",
        epilog="example: asrprune crosslingual-table --exp exp --layers flat joinap_linear --seen de fr "
        "--unseen pl zh --out exp/RESULTS.md",
    )
    add_exp(parser, "experiment folder holding multi_<layer>/")
    parser.add_argument("--layers", nargs="+", required=True, help="output layer types, one column group each")
    parser.add_argument("--seen", nargs="+", required=True, help="languages the models were trained on")
    parser.add_argument("--unseen", nargs="+", required=True, help="languages added zero-shot / few-shot")
    add_out(parser, "markdown table to write")
    parser.set_defaults(func=run_cli)
