"""Time ``asrprune --help`` (the CLI's start-up: what a user waits for before any stage runs) and, for
comparison, ``asrprune <stage> --help`` for a few stages, in fresh processes, median of ``--repeats`` runs.

    python benchmarks/cli_startup.py --repeats 5 --other-load "nothing else running" \\
        --out benchmarks/results/cli_startup.json

With several ``--python`` interpreters (e.g. two virtual environments of the same lock, one installed without
and one with compiled bytecode) every command runs under each in turn, and the record keys its times by
interpreter. The record notes ``PYTHONDONTWRITEBYTECODE``: with it set, a venv without ``.pyc`` files compiles
every imported module from source in every process.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from asrprune.benchmarking.provenance import provenance

COMMANDS = (["--help"], ["synth", "--help"], ["train", "--help"], ["prune", "--help"])


def seconds(python: str, arguments: list[str]) -> float:
    """Wall seconds of one ``<python> -m asrprune.cli <arguments>`` run in a fresh interpreter."""
    start = time.perf_counter()
    subprocess.run([python, "-m", "asrprune.cli", *arguments], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--other-load", required=True, help="what else ran on the machine meanwhile")
    parser.add_argument("--out", required=True)
    parser.add_argument("--python", action="append", metavar="INTERPRETER",
                        help="interpreter to time (repeat to compare several; default: this one)")
    args = parser.parse_args()
    pythons = args.python or [sys.executable]
    for python in pythons:  # warm the file cache once, so no run pays for the first read from disk
        seconds(python, ["train", "--help"])
    runs = {(python, " ".join(c)): [] for python in pythons for c in COMMANDS}
    for _ in range(args.repeats):  # alternate commands and interpreters, so a slower minute spreads over all
        for python, name in runs:
            runs[python, name].append(round(seconds(python, name.split()), 3))
    medians = {key: statistics.median(times) for key, times in runs.items()}
    if len(pythons) == 1:
        record = {"median_seconds": {name: t for (_, name), t in medians.items()},
                  "runs_seconds": {name: t for (_, name), t in runs.items()}}
    else:
        record = {"median_seconds": {p: {n: t for (q, n), t in medians.items() if q == p} for p in pythons},
                  "runs_seconds": {p: {n: t for (q, n), t in runs.items() if q == p} for p in pythons}}
    record["PYTHONDONTWRITEBYTECODE"] = os.environ.get("PYTHONDONTWRITEBYTECODE", "")
    record["provenance"] = provenance(args.other_load)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record["median_seconds"]))


if __name__ == "__main__":
    main()
