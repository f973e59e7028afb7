"""Training-seed variance of a recipe's model: test PER and WER per language over runs that differ only in seed.

Each ``--run`` is a finished ``recipes/asr.sh`` experiment folder (stages 4-6: ``config.yaml``,
``train_summary.json``, ``checkpoints/best.ckpt``, ``decode_test_<lang>/results.json``). The runs must share the
config except for ``seed``; the script refuses otherwise. Writes ``--out`` (JSON: every run's rates, its seed,
checkpoint hash and the commit given for it, mean and sample standard deviation per language and metric, and the
provenance of this collection) and ``--table`` (markdown, mean ± std per language), e.g. for the mini recipe:

    recipes/mini/run.sh --stage 4 --stop_stage 6 --exp exp/seed1 --train_opt seed=1   # and seed=2
    python benchmarks/seed_variance.py --run recipes/mini/exp/multi@COMMIT recipes/mini/exp/seed1@COMMIT ... \\
        --other-load "..." --out benchmarks/results/mini_seed_variance.json \\
        --table benchmarks/results/mini_seed_variance.md

A run's commit is given after ``@`` because the folder does not record it (the training summary has no commit).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import yaml

from asrprune.benchmarking.provenance import file_sha256, provenance
from asrprune.scoring.result_table import read_results

METRICS = {"PER (greedy)": "PER", "WER (lexicon beam)": "WER"}


def read_run(folder: Path) -> dict:
    """Seed, config, checkpoint hash, dev PER and ``{metric: {lang: rate %}}`` of one experiment folder."""
    config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    summary = json.loads((folder / "train_summary.json").read_text(encoding="utf-8"))
    rates: dict[str, dict[str, float]] = {}
    for decode in sorted(folder.glob("decode_test_*")):
        for row in read_results(decode):
            if row.metric in METRICS:
                lang = row.dataset.removeprefix("test_")
                rates.setdefault(METRICS[row.metric], {})[lang] = round(row.counts.error_rate, 2)
    if not rates:
        raise SystemExit(f"{folder}: no decode_test_*/results.json (run stages 5-6 first)")
    return {"folder": str(folder), "seed": config["seed"], "config": config, "dev_per": summary["best_dev_per"],
            "checkpoint": file_sha256(folder / "checkpoints" / "best.ckpt"), "rates": rates}


def without_seed(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "seed"}


def summarise(runs: list[dict]) -> dict:
    """``{metric: {lang or "mean": {"mean", "std", "min", "max", "spread"}}}`` over runs ("spread" = max - min);
    "mean" is the language average."""
    summary: dict[str, dict] = {}
    for metric in METRICS.values():
        langs = sorted(runs[0]["rates"][metric])
        per_run = {lang: [r["rates"][metric][lang] for r in runs] for lang in langs}
        per_run["mean"] = [statistics.fmean(r["rates"][metric][lang] for lang in langs) for r in runs]
        summary[metric] = {
            lang: {"mean": round(statistics.fmean(v), 2), "std": round(statistics.stdev(v), 2),
                   "min": round(min(v), 2), "max": round(max(v), 2), "spread": round(max(v) - min(v), 2)}
            for lang, v in per_run.items()
        }
    return summary


def markdown(runs: list[dict], summary: dict) -> str:
    langs = [lang for lang in summary["PER"] if lang != "mean"] + ["mean"]
    lines = ["|metric|" + "|".join(langs) + "|", "|---|" + "---|" * len(langs)]
    for metric, stats in summary.items():
        lines.append(f"|{metric} mean ± std|" + "|".join(f"{stats[l]['mean']:.2f} ± {stats[l]['std']:.2f}"
                                                          for l in langs) + "|")
        lines.append(f"|{metric} range|" + "|".join(f"{stats[l]['min']:.1f}-{stats[l]['max']:.1f}" for l in langs)
                     + "|")
    for run in runs:
        lines.append(f"|PER seed {run['seed']}|" + "|".join(
            f"{run['rates']['PER'][l]:.1f}" if l != "mean" else
            f"{statistics.fmean(run['rates']['PER'][x] for x in langs[:-1]):.2f}" for l in langs) + "|")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", nargs="+", required=True, metavar="FOLDER@COMMIT",
                        help="experiment folders and the commit each was trained and decoded at")
    parser.add_argument("--other-load", required=True, help="what else ran on the machine during the runs")
    parser.add_argument("--out", required=True)
    parser.add_argument("--table", required=True)
    args = parser.parse_args()
    runs = []
    for spec in args.run:
        folder, _, commit = spec.partition("@")
        runs.append({**read_run(Path(folder)), "commit": commit or None})
    if len(runs) < 2:
        raise SystemExit("--run: at least two runs are needed for a standard deviation")
    for run in runs[1:]:
        if without_seed(run["config"]) != without_seed(runs[0]["config"]):
            raise SystemExit(f"{run['folder']}: its config differs from {runs[0]['folder']} beyond the seed")
    seeds = [run["seed"] for run in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--run: the runs must have different seeds, got {seeds}")
    summary = summarise(runs)
    record = {"runs": [{k: v for k, v in r.items() if k != "config"} for r in runs], "summary": summary,
              "provenance": provenance(args.other_load, config=runs[0]["config"],
                                       checkpoints=[Path(r["folder"]) / "checkpoints" / "best.ckpt" for r in runs])}
    Path(args.out).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    Path(args.table).write_text(markdown(runs, summary), encoding="utf-8")
    print(markdown(runs, summary))


if __name__ == "__main__":
    main()
