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

Where every run also decoded the transfer test split (``decode_transfer_<lang>``, the mini recipe's unseen voices,
rooms and channels), its PER is collected as ``transfer PER`` and the ratio to the test PER as ``transfer ratio``
(per language; the "mean" column is mean transfer PER / mean test PER, as the README's corpus table defines it).
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
TRANSFER, RATIO = "transfer PER", "transfer ratio"


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
    for decode in sorted(folder.glob("decode_transfer_*")):
        for row in read_results(decode):
            if row.metric == "PER (greedy)":
                rates.setdefault(TRANSFER, {})[row.dataset.removeprefix("transfer_")] = round(
                    row.counts.error_rate, 2)
    return {"folder": str(folder), "seed": config["seed"], "config": config, "dev_per": summary["best_dev_per"],
            "checkpoint": file_sha256(folder / "checkpoints" / "best.ckpt"), "rates": rates}


def without_seed(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "seed"}


def language_mean(rates: dict[str, dict[str, float]], metric: str) -> float:
    """One run's language average of ``metric``; for the transfer ratio, mean transfer PER / mean test PER."""
    if metric == RATIO:
        return language_mean(rates, TRANSFER) / language_mean(rates, "PER")
    return statistics.fmean(rates[metric].values())


def with_ratio(rates: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """``rates`` plus the per-language transfer ratio where the transfer split was decoded."""
    if TRANSFER not in rates:
        return rates
    return {**rates, RATIO: {lang: rates[TRANSFER][lang] / rates["PER"][lang] for lang in rates[TRANSFER]}}


def summarise(runs: list[dict]) -> dict:
    """``{metric: {lang or "mean": {"mean", "std", "min", "max", "spread"}}}`` over runs ("spread" = max - min);
    "mean" is the language average (:func:`language_mean`). Metrics: PER, WER and, where every run decoded the
    transfer split, transfer PER and ratio."""
    rates = [with_ratio(r["rates"]) for r in runs]
    metrics = [m for m in (*METRICS.values(), TRANSFER, RATIO) if all(m in r for r in rates)]
    summary: dict[str, dict] = {}
    for metric in metrics:
        langs = sorted(rates[0][metric])
        per_run = {lang: [r[metric][lang] for r in rates] for lang in langs}
        per_run["mean"] = [language_mean(r, metric) for r in rates]
        digits = 3 if metric == RATIO else 2
        summary[metric] = {
            lang: {"mean": round(statistics.fmean(v), digits), "std": round(statistics.stdev(v), digits),
                   "min": round(min(v), digits), "max": round(max(v), digits),
                   "spread": round(max(v) - min(v), digits)}
            for lang, v in per_run.items()
        }
    return summary


def markdown(runs: list[dict], summary: dict) -> str:
    langs = [lang for lang in summary["PER"] if lang != "mean"] + ["mean"]
    lines = ["|metric|" + "|".join(langs) + "|", "|---|" + "---|" * len(langs)]
    for metric, stats in summary.items():
        digits = 3 if metric == RATIO else 2
        lines.append(f"|{metric} mean ± std|" + "|".join(
            f"{stats[l]['mean']:.{digits}f} ± {stats[l]['std']:.{digits}f}" for l in langs) + "|")
        lines.append(f"|{metric} range|" + "|".join(
            f"{stats[l]['min']:.{digits - 1}f}-{stats[l]['max']:.{digits - 1}f}" for l in langs) + "|")
    for run in runs:
        lines.append(f"|PER seed {run['seed']}|" + "|".join(
            f"{run['rates']['PER'][l]:.1f}" if l != "mean" else f"{language_mean(run['rates'], 'PER'):.2f}"
            for l in langs) + "|")
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
