"""Time ``asrprune --help`` (the CLI's start-up: what a user waits for before any stage runs) and, for
comparison, ``asrprune <stage> --help`` for a few stages, in fresh processes, median of ``--repeats`` runs.

    python benchmarks/cli_startup.py --repeats 5 --other-load "nothing else running" \\
        --out benchmarks/results/cli_startup.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from asrprune.benchmarking.provenance import provenance

COMMANDS = (["--help"], ["synth", "--help"], ["train", "--help"], ["prune", "--help"])


def seconds(arguments: list[str]) -> float:
    """Wall seconds of one ``python -m asrprune.cli <arguments>`` run in a fresh interpreter."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "asrprune.cli", *arguments], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--other-load", required=True, help="what else ran on the machine meanwhile")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    seconds(["--help"])  # warm the file cache once, so no run pays for the first read from disk
    runs = {" ".join(c): [] for c in COMMANDS}
    for _ in range(args.repeats):  # alternate the commands, so a slower minute spreads over all of them
        for command in COMMANDS:
            runs[" ".join(command)].append(round(seconds(list(command)), 3))
    record = {"median_seconds": {name: statistics.median(times) for name, times in runs.items()},
              "runs_seconds": runs, "provenance": provenance(args.other_load)}
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record["median_seconds"]))


if __name__ == "__main__":
    main()
