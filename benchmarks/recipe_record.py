"""Collect what a recipe run produced into one committed result file with its provenance record.

Reads, from a finished ``recipes/mini/run.sh`` (or ``recipes/crosslingual/run.sh``) run: the stage start times that
the recipe's log() wrote (``<exp>/recipe_times.tsv``; set ``RECIPE_TIMES`` for recipes other than mini), the table
(``<exp>/RESULTS.md``), the transfer-test table with its ratios to the test set (``<exp>/RESULTS_transfer.md``, when
the corpus has a transfer split), the training summary (``<exp>/train_summary.json``; where ``<exp>`` holds several
models, as the crosslingual recipe's does, every ``train_summary.json`` below it, keyed by folder), the pruned-model
table (``<exp>/pathways/results/results.md``) and the corpus summary (``corpora/.../synth_summary.json`` when
present); writes them with the commit, machine, date, checkpoint hashes, configs and what else was running into
``--out`` (JSON) and prints the stage durations.

    python benchmarks/recipe_record.py --recipe recipes/mini --exp exp/multi --wall-seconds 900 \\
        --other-load "nothing else" --out benchmarks/results/mini_recipe.json
    RECIPE_TIMES=$PWD/recipes/crosslingual/exp/recipe_times.tsv recipes/crosslingual/run.sh, then
    python benchmarks/recipe_record.py --recipe recipes/crosslingual --exp exp --wall-seconds 5000 \\
        --other-load "..." --out benchmarks/results/crosslingual_recipe.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from asrprune.benchmarking.provenance import provenance


def stage_durations(times_tsv: Path, end: float) -> list[dict]:
    """``[{"stage": message, "seconds": s}]``: each logged line lasts until the next one (the last until ``end``)."""
    rows = [line.split("\t", 1) for line in times_tsv.read_text(encoding="utf-8").splitlines() if line.strip()]
    starts = [(float(t), message) for t, message in rows]
    stops = [t for t, _ in starts[1:]] + [end]
    return [{"stage": message, "seconds": round(stop - start)} for (start, message), stop in zip(starts, stops)]


def models(exp: Path) -> list[Path]:
    """The experiment folders of the run: ``exp`` itself if it trained a model, else every trained model below it."""
    if (exp / "train_summary.json").exists():
        return [exp]
    return sorted(summary.parent for summary in exp.rglob("train_summary.json"))


def per_model(exp: Path, folders: list[Path], read) -> dict:
    """``read(folder)`` of the one model, or ``{folder relative to exp: read(folder)}`` of several."""
    if folders == [exp]:
        return read(exp)
    return {folder.relative_to(exp).as_posix(): read(folder) for folder in folders}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="recipes/mini")
    parser.add_argument("--exp", default="exp/multi", help="the recipe's --exp, relative to --recipe")
    parser.add_argument("--wall-seconds", type=float, required=True, help="wall time of the whole run.sh")
    parser.add_argument("--other-load", required=True, help="what else ran on the machine during the run")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    exp = Path(args.recipe) / args.exp
    times = exp / "recipe_times.tsv"
    folders = models(exp)
    if not times.is_file() or not folders:
        raise SystemExit(f"{exp}: needs recipe_times.tsv (the recipe's stage log; RECIPE_TIMES for recipes other "
                         "than mini) and a train_summary.json in it or below it: not a finished recipe run")
    rows = times.read_text(encoding="utf-8").splitlines()
    end = float(rows[-1].split("\t")[0])  # the recipe's last log line ("mini recipe done") ends the run
    stages = stage_durations(times, end)
    summaries = sorted(Path(args.recipe, "corpora").glob("synth_summary.json"))
    pruned = exp / "pathways" / "results" / "results.md"
    transfer = exp / "RESULTS_transfer.md"
    train_summaries = {f: json.loads((f / "train_summary.json").read_text(encoding="utf-8")) for f in folders}
    record = {
        "wall_seconds": args.wall_seconds,
        "stages": stages[:-1],
        "results": (exp / "RESULTS.md").read_text(encoding="utf-8"),
        "transfer_results": transfer.read_text(encoding="utf-8") if transfer.exists() else None,
        "train_summary": per_model(exp, folders, train_summaries.get),
        # the code the models were trained with (this record's own provenance names the code that collected it)
        "trained_at_commits": sorted({s.get("provenance", {}).get("commit") or "not recorded"
                                      for s in train_summaries.values()}),
        "pruned_results": pruned.read_text(encoding="utf-8") if pruned.exists() else None,
        "corpus": json.loads(summaries[0].read_text(encoding="utf-8")) if summaries else None,
        "provenance": provenance(args.other_load, checkpoints=[f / "checkpoints" / "best.ckpt" for f in folders],
                                 config=per_model(exp, folders, lambda f: yaml.safe_load(
                                     (f / "config.yaml").read_text(encoding="utf-8")))),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for stage in stages[:-1]:
        print(f"{stage['seconds']:6d} s  {stage['stage']}")
    print(f"{args.wall_seconds:6.0f} s  whole run")


if __name__ == "__main__":
    main()
