"""Dev PER against the training budget: several finished ``asrprune train`` runs of one corpus, side by side.

For each run (``--run LABEL=EXP``, an experiment folder with ``train_summary.json`` and ``tensorboard/``) it reads the
config that run trained with (batch seconds, subsampling channels, SpecAugment, steps), its throughput and best dev
PER, the dev PER at every validation, and where the run was decoded by the mini recipe's stages 5-6
(``decode_test_<lang>``, ``decode_transfer_<lang>``) its test and transfer PER; it writes a table (``OUT.md``), the
numbers with each run's provenance record (``OUT.json``) and a plot of dev PER against the utterances trained on (``OUT.png``), where
runs with different batch sizes compare at equal data. Utterances seen at a validation step are estimated as the
step times the run's mean utterances per step (batches are cut by seconds of audio, so their size varies a little).

    python benchmarks/training_budget.py --run b60_2000=recipes/mini/exp/multi \\
        --run b30_4000=recipes/mini/exp/b30_4000 --out benchmarks/results/training_budget/study
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from asrprune.scoring.report import ratio_rows  # noqa: E402
from asrprune.scoring.result_table import read_results  # noqa: E402


def dev_curve(exp: Path) -> list[tuple[int, float]]:
    """(step, dev PER %) of every validation logged under ``exp/tensorboard``."""
    events = EventAccumulator(str(exp / "tensorboard"))
    events.Reload()
    return [(point.step + 1, round(point.value, 2)) for point in events.Scalars("val/per")]


def transfer_table(exp: Path) -> dict | None:
    """{language or "mean": {"test": PER, "transfer": PER, "ratio": r}} from the greedy PER of the run's
    ``decode_test_<lang>`` and ``decode_transfer_<lang>`` results (the mini recipe's stages 5-6), rounded as
    ``RESULTS_transfer.md`` rounds them (:func:`asrprune.scoring.report.ratio_rows`); None where the run was not
    decoded on the transfer split."""
    rows = [row for decode in sorted(exp.glob("decode_*")) for row in read_results(decode)]
    table = {lang: {"test": round(test, 1), "transfer": round(transfer, 1), "ratio": round(ratio, 2)}
             for metric, lang, test, transfer, ratio in ratio_rows(rows, "transfer", "test")
             if metric == "PER (greedy)"}
    return table or None


def describe(label: str, exp: Path) -> dict:
    """One run: its settings, throughput, best dev PER and dev curve, and its provenance record."""
    summary = json.loads((exp / "train_summary.json").read_text(encoding="utf-8"))
    config = summary["provenance"]["config"]
    per_step = summary["utterances_seen"] / summary["global_step"]
    return {
        "label": label,
        "exp": str(exp),
        "max_batch_seconds": config["data"]["max_batch_seconds"],
        "specaug": specaug_summary(config["model"].get("specaug")),
        "subsampling_channels": config["model"].get("subsampling_channels") or config["model"]["encoder"].get(
            "output_size"),
        "steps": summary["global_step"],
        "utterances_seen": summary["utterances_seen"],
        "utterances_per_step": round(per_step, 2),
        "train_step_seconds": summary["train_step_seconds"],
        "utterances_per_second": summary["utterances_per_second"],
        "best_dev_per": round(summary["best_dev_per"], 2),
        "test_and_transfer_per": transfer_table(exp),
        "dev_curve": [{"step": step, "utterances_seen": round(step * per_step), "dev_per": per}
                      for step, per in dev_curve(exp)],
        "provenance": summary["provenance"],
    }


def table(runs: list[dict]) -> str:
    lines = ["| run | batch s | front-end channels | SpecAugment | steps | utterances seen | utt/s | train s "
             "| best dev PER | test PER de/fr/es/it | test PER mean | transfer PER mean | transfer ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        per = run["test_and_transfer_per"]
        decoded = ("-", "-", "-", "-") if per is None else (
            " / ".join(str(per[lang]["test"]) for lang in ("de", "fr", "es", "it")), per["mean"]["test"],
            per["mean"]["transfer"], per["mean"]["ratio"])
        lines.append(f"| {run['label']} | {run['max_batch_seconds']} | {run['subsampling_channels']} "
                     f"| {run['specaug']} | {run['steps']} | {run['utterances_seen']} | {run['utterances_per_second']} "
                     f"| {run['train_step_seconds']} | {run['best_dev_per']} | " + " | ".join(map(str, decoded)) + " |")
    return "\n".join(lines) + "\n"


def specaug_summary(specaug: dict | None) -> str:
    """The SpecAugment setting in a few words: which of time warp, frequency masks and time masks are on."""
    if not specaug:
        return "none"
    parts = [name for key, name in (("apply_time_warp", "warp"), ("apply_freq_mask", "freq"),
                                    ("apply_time_mask", "time")) if specaug.get(key)]
    if specaug.get("apply_time_mask"):
        parts[-1] = f"time x{specaug.get('num_time_mask')}"
    return "+".join(parts) or "none"


def plot(runs: list[dict], out_png: Path) -> None:
    figure, axis = plt.subplots(figsize=(7.5, 5))
    colours = plt.get_cmap("tab20").colors  # the default cycle repeats after 10 runs
    for k, run in enumerate(runs):
        curve = run["dev_curve"]
        axis.plot([p["utterances_seen"] / 1000 for p in curve], [p["dev_per"] for p in curve],
                  marker="os^"[k % 3], color=colours[k % len(colours)], label=run["label"])
    axis.set(xlabel="utterances trained on (thousands)", ylabel="dev PER (%), greedy",
             title="dev PER against training data seen")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(out_png, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, metavar="LABEL=EXP",
                        help="a finished training run (repeat)")
    parser.add_argument("--out", required=True, help="output prefix: writes OUT.md, OUT.json and OUT.png")
    args = parser.parse_args()
    runs = []
    for spec in args.run:
        label, sep, exp = spec.partition("=")
        if not sep:
            parser.error(f"--run {spec!r}: expected LABEL=EXP")
        if not (Path(exp) / "train_summary.json").is_file():
            parser.error(f"--run {spec!r}: {exp}/train_summary.json not found (is the run finished?)")
        runs.append(describe(label, Path(exp)))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(table(runs), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(runs, indent=1) + "\n", encoding="utf-8")
    plot(runs, out.with_suffix(".png"))
    print(table(runs))


if __name__ == "__main__":
    main()
