"""Results of all methods: a Markdown table, results.json, a WER-vs-sparsity plot and a mask-overlap heat map."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def collect(exp: Path) -> list[dict]:
    """Every ``result.json`` under ``exp`` (written by ``asrprune prune run``), sorted by sparsity and method."""
    records = [json.loads(p.read_text()) for p in sorted(exp.rglob("result.json"))]
    if not records:
        raise OSError(f"{exp}: no result.json found; run 'asrprune prune run' first")
    return sorted(records, key=lambda r: (r["sparsity"], r["method"]))


def _mean(values: dict) -> float | None:
    return sum(values.values()) / len(values) if values else None


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(records: list[dict]) -> str:
    """One row per method and sparsity: PER/WER per language and averages (%), steps, wall time, sizes, masks."""
    languages = records[0]["languages"]
    head = (["sparsity", "method"] + [f"PER {lang}" for lang in languages] + ["PER avg"]
            + [f"WER {lang}" for lang in languages]
            + ["WER avg", "steps", "train min", "union sparsity", "mean overlap", "export MB", "pathway MB"])
    lines = ["|" + "|".join(head) + "|", "|" + "|".join("---" for _ in head) + "|"]
    for r in records:
        masks = r.get("masks") or {}
        overlap = masks.get("overlap")
        off_diagonal = [overlap[i][j] for i in range(len(overlap)) for j in range(len(overlap)) if i != j] if overlap else []
        cells = (
            [f"{r['sparsity']:.0%}", r["method"]]
            + [_fmt(r["per"].get(lang)) for lang in languages] + [_fmt(_mean(r["per"]))]
            + [_fmt(r["wer"].get(lang)) for lang in languages] + [_fmt(_mean(r["wer"]))]
            + [str(r["steps"]), _fmt(r["train_seconds"] / 60), _fmt(masks.get("union_sparsity"), 3),
               _fmt(sum(off_diagonal) / len(off_diagonal) if off_diagonal else None, 3),
               _fmt(r["export_bytes"] / 1e6, 2), _fmt(r["pathway_export_bytes"] / 1e6 if "pathway_export_bytes" in r else None, 2)]
        )
        lines.append("|" + "|".join(cells) + "|")
    return "\n".join(lines) + "\n"


def plot_wer_vs_sparsity(records: list[dict], out: Path) -> None:
    """Average WER (left) and PER (right) per method against target sparsity, the dense model as a dashed line.

    Sparse monolingual methods (one model per language) are dashed, multilingual ones solid; each method has its own
    colour (tab10, then three dark ones) and marker, so that the 11 methods stay apart. A panel is left out where no record has that
    metric (no lexicon: no WER)."""
    metrics = [m for m in ("wer", "per") if records[0][m]]
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4.5), squeeze=False)
    methods = sorted({r["method"] for r in records if r["method"] != "dense"})
    colours = list(plt.get_cmap("tab10").colors) + ["#000080", "#8b0000", "#556b2f"]
    markers = "osD^v<>phX*"
    for ax, metric in zip(axes[0], metrics):
        for i, method in enumerate(methods):
            points = sorted((r["sparsity"], _mean(r[metric])) for r in records if r["method"] == method)
            monolingual = not next(r for r in records if r["method"] == method)["multilingual"]
            ax.plot([p[0] * 100 for p in points], [p[1] for p in points], marker=markers[i % len(markers)],
                    color=colours[i % len(colours)], linestyle="--" if monolingual else "-",
                    label=method + (" (monolingual)" if monolingual else ""))
        for r in records:
            if r["method"] == "dense":
                ax.axhline(_mean(r[metric]), color="black", linestyle=":", label="dense")
        ax.set_xlabel("sparsity of the prunable encoder weights (%)")
        ax.set_ylabel(f"average {metric.upper()} over languages (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_overlap(records: list[dict], sparsity: float, out: Path) -> None:
    """Heat maps of the Jaccard overlap between languages' masks, one panel per method at ``sparsity``."""
    chosen = [r for r in records if r["method"] != "dense" and abs(r["sparsity"] - sparsity) < 1e-6 and r.get("masks")]
    if not chosen:
        raise ValueError(f"no results at sparsity {sparsity} to draw the mask overlap of")
    cols = min(4, len(chosen))
    rows = (len(chosen) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, r in zip(axes.flat, chosen):
        labels = r["masks"]["languages"]
        image = ax.imshow(r["masks"]["overlap"], vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_title(r["method"], fontsize=8)
        for i, row in enumerate(r["masks"]["overlap"]):
            for j, value in enumerate(row):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6, color="white")
    for ax in list(axes.flat)[len(chosen):]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, shrink=0.8, label="mask overlap |m_i ∧ m_j| / |m_i ∨ m_j|")
    fig.suptitle(f"overlap of the languages' masks at {sparsity:.0%} sparsity")
    fig.savefig(out, dpi=120)
    plt.close(fig)


def write_report(exp: Path, out: Path, heatmap_sparsity: float) -> list[dict]:
    records = collect(exp)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    (out / "results.md").write_text(markdown_table(records), encoding="utf-8")
    plot_wer_vs_sparsity(records, out / "wer_vs_sparsity.png")
    plot_overlap(records, heatmap_sparsity, out / "mask_overlap.png")
    return records
