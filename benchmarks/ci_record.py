"""Record a run of the test command (``bash .ci/run``, i.e. ``./run_tests.sh``) from a fresh clone: the pytest
summary (passed, skipped, failed, pytest's seconds), the whole command's wall seconds (install included) and the
provenance, so the README's test count and CI time have a committed source.

    d=$(mktemp -d); git clone -q . $d/x; cd $d/x
    start=$(date +%s); CI=true bash .ci/run > $d/ci.log 2>&1; echo $(( $(date +%s) - start ))   # wall seconds
    python benchmarks/ci_record.py --log $d/ci.log --wall-seconds SECONDS --commit $(git -C $d/x rev-parse HEAD) \\
        --other-load "..." --out benchmarks/results/ci_run.json
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from asrprune.benchmarking.provenance import provenance

# pytest's last line, e.g. "=== 301 passed, 2 skipped, 3 warnings in 470.12s (0:07:50) ===" (-q omits the "=").
SUMMARY = re.compile(r"(?P<counts>(\d+ \w+(, )?)+) in (?P<seconds>[\d.]+)s")


def pytest_summary(log: str) -> dict:
    """``{"passed": n, "skipped": n, ..., "pytest_seconds": s}`` from the last pytest summary line of ``log``."""
    matches = [m for line in log.splitlines() if (m := SUMMARY.search(line))]
    if not matches:
        raise SystemExit("no pytest summary line in the log (did the test command run?)")
    last = matches[-1]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", last["counts"])}
    return {**counts, "pytest_seconds": float(last["seconds"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", required=True, help="the output of bash .ci/run")
    parser.add_argument("--wall-seconds", type=float, required=True, help="wall time of the whole command")
    parser.add_argument("--commit", required=True, help="the commit the fresh clone was at")
    parser.add_argument("--other-load", required=True, help="what else ran on the machine meanwhile")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    record = {"tested_commit": args.commit, "wall_seconds": args.wall_seconds,
              **pytest_summary(Path(args.log).read_text(encoding="utf-8", errors="replace")),
              "provenance": provenance(args.other_load)}
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in record.items() if k != "provenance"}))


if __name__ == "__main__":
    main()
