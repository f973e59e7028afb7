"""How much the adaptive masks change at each re-evaluation, from the history the pruning runs saved.

Every run of ``asrprune prune run`` with re-evaluated masks (adaptive masking, Dynamic ASR Pathways) keeps, in its
checkpoint's callback state, per re-evaluation the step, the target sparsity and per mask row how many weights
regrew (kept now, masked before). This script reads ``<run>/checkpoints/last.ckpt`` (or, for monolingual methods,
``<run>/<lang>/checkpoints/last.ckpt``) of every run folder under ``--exp`` and writes one Markdown table: per run
and re-evaluation step, the regrown weights as a percentage of the weights the row keeps after that step, averaged
over rows. A high figure once the target sparsity is reached means the criterion keeps swapping weights in that
have not been trained in this pathway, which the few remaining steps must repair. The last column is the run's
average PER (``result.json``; on the test sets, or on dev for ``recipes/pathways/dev_study.sh``, whose runs decode dev
as test: ``--scored-on dev``). Several ``--exp`` folders make one table, each run named by its path below their
common folder. The file ends with its provenance record.

Examples: python benchmarks/mask_churn.py --exp recipes/pathways/exp/sparsity70 --other-load "nothing else" \
    --out benchmarks/results/pathways_mask_churn.md
  python benchmarks/mask_churn.py --exp recipes/pathways/exp_dev/*/sparsity70 --scored-on dev \
    --other-load "nothing else" --out benchmarks/results/pathways_dev_mask_churn_70.md
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from asrprune.benchmarking.provenance import provenance, provenance_markdown


def reevaluation_history(checkpoint: Path) -> list[dict]:
    """The AdaptiveMasking callback's ``history`` saved in ``checkpoint``; [] if the run had no re-evaluation."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    for key, value in state.get("callbacks", {}).items():
        if key.startswith("AdaptiveMasking"):
            return value["history"]
    return []


def churn_by_step(history: list[dict], prunable: int) -> dict[int, float]:
    """Step -> regrown weights as % of each row's kept weights after the step, mean over rows."""
    out = {}
    for record in history:
        kept = prunable * (1.0 - record["sparsity"])
        rows = record["rows"].values()
        out[record["step"]] = 100.0 * sum(row["regrown"] for row in rows) / (len(rows) * kept)
    return out


def run_histories(run: Path) -> list[list[dict]]:
    """Histories of a multilingual run (one checkpoint) or of each language of a monolingual one."""
    checkpoints = [run / "checkpoints" / "last.ckpt"] if (run / "checkpoints").exists() else sorted(
        run.glob("*/checkpoints/last.ckpt"))
    return [h for h in (reevaluation_history(c) for c in checkpoints) if h]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exp", required=True, nargs="+",
                        help="folders of runs, e.g. recipes/pathways/exp/sparsity70")
    parser.add_argument("--scored-on", default="test", help="the sets the runs' result.json PER was decoded on")
    parser.add_argument("--out", required=True, help="Markdown file to write")
    parser.add_argument("--other-load", required=True, help="what else ran on the machine (for the record)")
    args = parser.parse_args()
    common = Path(os.path.commonpath([Path(e).resolve() for e in args.exp]))
    runs = sorted(p for e in args.exp for p in Path(e).iterdir() if (p / "result.json").exists())
    rows, steps = {}, set()
    for run in runs:
        result = json.loads((run / "result.json").read_text())
        histories = run_histories(run)
        if not histories or not result.get("masks"):
            continue
        prunable = result["masks"]["prunable_weights"]
        per_history = [churn_by_step(h, prunable) for h in histories]
        churn = {s: sum(c[s] for c in per_history) / len(per_history) for s in per_history[0]}
        steps.update(churn)
        mean_per = sum(result["per"].values()) / len(result["per"])
        rows[run.resolve().relative_to(common).as_posix()] = (churn, mean_per)
    if not rows:
        raise SystemExit(f"{args.exp}: no run with re-evaluated masks (result.json + checkpoint history)")
    ordered = sorted(steps)
    lines = [f"Regrown weights per re-evaluation, % of the weights each mask keeps (mean over masks); "
             f"{' '.join(args.exp)}", "", provenance_markdown(provenance(args.other_load)), "",
             "| run | " + " | ".join(f"step {s}" for s in ordered) + f" | {args.scored_on} PER avg |",
             "|---|" + "---|" * (len(ordered) + 1)]
    for name, (churn, mean_per) in rows.items():
        cells = [f"{churn[s]:.1f}" if s in churn else "-" for s in ordered]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean_per:.1f} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text, end="")


if __name__ == "__main__":
    main()
