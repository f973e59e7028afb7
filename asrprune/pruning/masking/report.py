"""Results of all methods: a Markdown table, results.json, a WER-vs-sparsity plot and a mask-overlap heat map."""
from __future__ import annotations

import json
import re
import statistics
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


def mean_overlap(masks: dict) -> float | None:
    """Mean Jaccard overlap between the languages' masks (off-diagonal of ``masks["overlap"]``), None without one."""
    overlap = masks.get("overlap") or []
    off_diagonal = [row[j] for i, row in enumerate(overlap) for j in range(len(row)) if i != j]
    return sum(off_diagonal) / len(off_diagonal) if off_diagonal else None


def markdown_table(records: list[dict]) -> str:
    """One row per method and sparsity: PER/WER per language and averages (%), steps, wall time, sizes, masks."""
    languages = records[0]["languages"]
    head = (["sparsity", "method"] + [f"PER {lang}" for lang in languages] + ["PER avg"]
            + [f"WER {lang}" for lang in languages]
            + ["WER avg", "steps", "train min", "union sparsity", "mean overlap", "export MB", "pathway MB"])
    lines = ["|" + "|".join(head) + "|", "|" + "|".join("---" for _ in head) + "|"]
    for r in records:
        masks = r.get("masks") or {}
        cells = (
            [f"{r['sparsity']:.0%}", r["method"]]
            + [_fmt(r["per"].get(lang)) for lang in languages] + [_fmt(_mean(r["per"]))]
            + [_fmt(r["wer"].get(lang)) for lang in languages] + [_fmt(_mean(r["wer"]))]
            + [str(r["steps"]), _fmt(r["train_seconds"] / 60), _fmt(masks.get("union_sparsity"), 3),
               _fmt(mean_overlap(masks), 3),
               _fmt(r["export_bytes"] / 1e6, 2),
               _fmt(r["pathway_export_bytes"] / 1e6 if "pathway_export_bytes" in r else None, 2)]
        )
        lines.append("|" + "|".join(cells) + "|")
    return "\n".join(lines) + "\n"


# One colour (tab10, then three dark ones) and marker per method, so that the 11 methods stay apart.
COLOURS = list(plt.get_cmap("tab10").colors) + ["#000080", "#8b0000", "#556b2f"]
MARKERS = "osD^v<>phX*"


def _plot_against_sparsity(series: dict, dense: dict, multilingual: dict, ylabel: str, out: Path) -> None:
    """One panel per metric of ``series`` (``{metric: {method: [(sparsity %, value, std), ...]}}``): each method's
    values against sparsity, with error bars where a std is non-zero; monolingual methods (``multilingual[method]``
    false) dashed, multilingual ones solid; ``dense[metric]``, if given, a dotted line. ``ylabel`` follows
    "average <METRIC> over languages (%)"."""
    fig, axes = plt.subplots(1, len(series), figsize=(6 * len(series), 4.5), squeeze=False)
    for ax, (metric, methods) in zip(axes[0], series.items()):
        for i, method in enumerate(sorted(methods)):
            xs, ys, errs = zip(*sorted(methods[method]))
            monolingual = not multilingual[method]
            ax.errorbar(xs, ys, yerr=errs if any(errs) else None, capsize=3, marker=MARKERS[i % len(MARKERS)],
                        color=COLOURS[i % len(COLOURS)], linestyle="--" if monolingual else "-",
                        label=method + (" (monolingual)" if monolingual else ""))
        if metric in dense:
            ax.axhline(dense[metric], color="black", linestyle=":", label="dense")
        ax.set_xlabel("sparsity of the prunable encoder weights (%)")
        ax.set_ylabel(f"average {metric.upper()} over languages (%){ylabel}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_wer_vs_sparsity(records: list[dict], out: Path) -> None:
    """Average WER (left) and PER (right) per method against target sparsity, the dense model as a dotted line
    (:func:`_plot_against_sparsity`). A panel is left out where no record has that metric (no lexicon: no WER)."""
    metrics = [m for m in ("wer", "per") if records[0][m]]
    series: dict = {m: {} for m in metrics}
    dense = {}
    for r in records:
        for m in metrics:
            if r["method"] == "dense":
                dense[m] = _mean(r[m])
            else:
                series[m].setdefault(r["method"], []).append((r["sparsity"] * 100, _mean(r[m]), 0.0))
    multilingual = {r["method"]: r["multilingual"] for r in records if r["method"] != "dense"}
    _plot_against_sparsity(series, dense, multilingual, "", out)


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


# ---------------------------------------------------------------------------------------------------------------
# Several training seeds (recipes/pathways/run.sh --seeds): <exp>/seed<N>/ holds one seed's runs, each laid out as
# a single-seed experiment folder. Mean ± std over seeds, and paired bootstrap CIs against the best DAP variant.

def collect_seeds(exp: Path) -> dict[int, list[dict]]:
    """``{seed: records}`` of every ``<exp>/seed<N>/**/result.json``; each record gets ``"dir"`` (its folder, where
    its ``decode_test_<lang>`` folders are) and ``"seed"``. Seeds without results are left out."""
    by_seed: dict[int, list[dict]] = {}
    for seed_dir in sorted(exp.glob("seed*")):
        if not seed_dir.is_dir() or not seed_dir.name[4:].isdigit():
            continue
        seed = int(seed_dir.name[4:])
        for path in sorted(seed_dir.rglob("result.json")):
            record = json.loads(path.read_text())
            by_seed.setdefault(seed, []).append({**record, "dir": str(path.parent), "seed": seed})
    if not by_seed:
        raise OSError(f"{exp}: no seed<N>/**/result.json found; run recipes/pathways/run.sh --seeds ... first")
    return by_seed


def group_runs(by_seed: dict[int, list[dict]]) -> dict[tuple[float, str], dict[int, dict]]:
    """``{(sparsity, method): {seed: record}}``, sorted by sparsity and method."""
    groups: dict[tuple[float, str], dict[int, dict]] = {}
    for seed, records in by_seed.items():
        for r in records:
            groups.setdefault((r["sparsity"], r["method"]), {})[seed] = r
    return dict(sorted(groups.items()))


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5  # sample std (ddof 1)
    return f"{mean:.1f} ± {std:.1f}"


def seed_table(groups: dict[tuple[float, str], dict[int, dict]], metric: str, languages: list[str]) -> str:
    """Markdown, one row per sparsity and method: ``metric`` (``"wer"`` or ``"per"``) per language and averaged
    over languages, as mean ± sample std over the seeds (a bare value for one seed), the seeds, steps and mean
    training minutes. The average is taken per seed, then over seeds."""
    head = ["sparsity", "method", "seeds"] + [f"{metric.upper()} {lang}" for lang in languages] + \
        [f"{metric.upper()} avg", "steps", "train min"]
    lines = ["|" + "|".join(head) + "|", "|" + "|".join("---" for _ in head) + "|"]
    for (sparsity, method), runs in groups.items():
        records = [runs[s] for s in sorted(runs)]
        per_lang = [_mean_std([r[metric][lang] for r in records if lang in r[metric]]) for lang in languages]
        averages = [_mean(r[metric]) for r in records if r[metric]]
        minutes = sum(r["train_seconds"] for r in records) / len(records) / 60
        lines.append("|" + "|".join([f"{sparsity:.0%}", method, ",".join(map(str, sorted(runs)))] + per_lang
                                    + [_mean_std(averages), str(records[0]["steps"]), f"{minutes:.1f}"]) + "|")
    return "\n".join(lines) + "\n"


def best_dap(groups: dict[tuple[float, str], dict[int, dict]], sparsity: float, metric: str) -> str | None:
    """The DAP variant (method ``dap_*``) with the lowest mean over seeds of the language-averaged ``metric`` at
    ``sparsity``; None if there is none."""
    scores = {}
    for (s, method), runs in groups.items():
        if abs(s - sparsity) < 1e-9 and method.startswith("dap_"):
            values = [_mean(r[metric]) for r in runs.values() if r[metric]]
            if values:
                scores[method] = sum(values) / len(values)
    return min(scores, key=scores.get) if scores else None


def bootstrap_rows(groups: dict[tuple[float, str], dict[int, dict]], data: Path, metric: str,
                   languages: list[str], resamples: int = 2000, seed: int = 0, reference: str | None = None,
                   against: tuple[str, ...] | None = None) -> list[dict]:
    """At every sparsity, methods against a reference method there: paired bootstrap CIs
    (:func:`asrprune.scoring.bootstrap.paired_bootstrap`) of the difference method - reference of the corpus-level
    ``metric``, per language and averaged over languages, over the test utterances of ``data``, pooled over the
    seeds both have. ``reference`` None: the best DAP variant (:func:`best_dap`) against every other method and the
    dense model (which has no seed: against all of the reference's seeds); a method name (``"adaptive"``): that
    method against the methods in ``against`` only."""
    from asrprune.scoring.bootstrap import paired_bootstrap, paired_errors
    from asrprune.scoring.error_rates import metric_for_language

    rows = []
    dense = next((runs for (s, m), runs in groups.items() if m == "dense"), None)
    for sparsity in sorted({s for s, _ in groups if s > 0}):
        ref_name = best_dap(groups, sparsity, metric) if reference is None else reference
        ref_runs = groups.get((sparsity, ref_name)) if ref_name else None
        if not ref_runs:
            continue
        others = [(m, runs) for (s, m), runs in groups.items() if abs(s - sparsity) < 1e-9 and m != ref_name
                  and (against is None or m in against)]
        if dense and against is None:
            others.append(("dense", dense))
        for method, runs in others:
            seeds = sorted(set(runs) & set(ref_runs)) if method != "dense" else sorted(ref_runs)
            if not seeds:
                continue
            mine = [runs[s] for s in seeds] if method != "dense" else list(runs.values())
            theirs = [ref_runs[s] for s in seeds]
            a, b, units = {}, {}, {}
            for lang in languages:
                unit = "per" if metric == "per" else metric_for_language(lang)
                a[lang], b[lang], units[lang] = paired_errors(
                    [Path(r["dir"]) / f"decode_test_{lang}" for r in mine],
                    [Path(r["dir"]) / f"decode_test_{lang}" for r in theirs], data / f"test_{lang}", unit)
            row = {"sparsity": sparsity, "method": method, "reference": ref_name, "seeds": seeds, "metric": metric,
                   "languages": {}}
            for lang in languages:
                row["languages"][lang] = vars(paired_bootstrap(a[lang], b[lang], units[lang], resamples,
                                                               seed=seed))
            row["average"] = vars(paired_bootstrap(a, b, units, resamples, seed=seed))
            rows.append(row)
    return rows


def bootstrap_table(rows: list[dict], languages: list[str]) -> str:
    """Markdown of :func:`bootstrap_rows`: difference to the row's reference method (column ``vs``) in percentage
    points with its 95 % CI, ``*`` where the CI excludes 0 (positive: worse than the reference)."""
    from asrprune.scoring.bootstrap import format_interval

    metric = rows[0]["metric"].upper() if rows else "WER"
    head = ["sparsity", "method", "vs", "seeds"] + [f"Δ{metric} {lang}" for lang in languages] + [f"Δ{metric} avg"]
    lines = ["|" + "|".join(head) + "|", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        cells = [f"{row['sparsity']:.0%}", row["method"], row["reference"], ",".join(map(str, row["seeds"]))]
        cells += [format_interval(row["languages"][lang]) for lang in languages] + [format_interval(row["average"])]
        lines.append("|" + "|".join(cells) + "|")
    return "\n".join(lines) + "\n"


def trained_at_commits(run_dir: Path) -> list[str]:
    """Short commits of the code a run trained with: the provenance of every ``train_summary.json`` under
    ``run_dir`` (one for a multilingual method, one per language for a monolingual one; none for the dense model)."""
    return sorted({json.loads(t.read_text(encoding="utf-8")).get("provenance", {}).get("commit", "")[:7]
                   for t in run_dir.rglob("train_summary.json")} - {""})


def plot_seeds(groups: dict[tuple[float, str], dict[int, dict]], metrics: tuple[str, ...], out: Path) -> None:
    """Mean over seeds of the language-averaged ``metrics`` per method against sparsity, ± one sample std as error
    bars (none for a single seed), the dense model a dotted line (:func:`_plot_against_sparsity`)."""
    series: dict = {m: {} for m in metrics}
    dense = {}
    multilingual = {}
    for (sparsity, method), runs in groups.items():
        for m in metrics:
            values = [_mean(r[m]) for r in runs.values() if r[m]]
            if not values:
                continue
            if method == "dense":
                dense[m] = statistics.mean(values)
            else:
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                series[m].setdefault(method, []).append((sparsity * 100, statistics.mean(values), std))
        if method != "dense":
            multilingual[method] = next(iter(runs.values()))["multilingual"]
    _plot_against_sparsity(series, dense, multilingual, ", mean ± std over seeds", out)


# The monolingual baselines that adaptive masking (the monolingual method of this family) is compared with.
MONOLINGUAL_BASELINES = ("omp", "lsp", "lth")


def write_seed_report(exp: Path, out: Path, data: Path | None = None, metrics: tuple[str, ...] = ("wer", "per"),
                      resamples: int = 2000, seed: int = 0, provenance: dict | None = None) -> dict:
    """``<out>/results_seeds.md``, ``results_seeds.json`` and ``metric_vs_sparsity_seeds.png``: mean ± std tables
    over ``<exp>/seed<N>`` and, with ``data`` (the folder of the decoded ``test_<lang>``), the paired bootstrap
    tables of every method against the best DAP variant and of adaptive masking against the monolingual baselines
    (per-utterance counts cached in each decode folder as ``utt_errors.<metric>.tsv``). ``provenance`` (a record of
    :func:`asrprune.benchmarking.provenance.provenance`): the code and machine that made the report, written into
    both files; the code each run trained with is listed as ``trained_at_commits``."""
    from asrprune.benchmarking.provenance import provenance_markdown

    by_seed = collect_seeds(exp)
    groups = group_runs(by_seed)
    languages = next(iter(by_seed.values()))[0]["languages"]
    metrics = tuple(m for m in metrics if any(r[m] for runs in groups.values() for r in runs.values()))
    commits = sorted({c for runs in groups.values() for r in runs.values()
                      for c in trained_at_commits(Path(r["dir"]))})
    parts = [f"# Pathways comparison over seeds {', '.join(map(str, sorted(by_seed)))}\n",
             "Mean ± sample standard deviation over training seeds (one value: one seed). Averages are over "
             "languages per seed, then over seeds. `train min`: mean wall minutes of a run's training stages. The runs "
             f"trained with commit(s) {', '.join(commits) or 'not recorded'}.\n"]
    if provenance is not None:
        parts.insert(1, provenance_markdown(provenance) + "\n")
    summary: dict = {"seeds": sorted(by_seed), "languages": languages, "trained_at_commits": commits,
                     "bootstrap": {}, "bootstrap_adaptive": {}}
    if provenance is not None:
        summary["provenance"] = provenance
    for metric in metrics:
        parts += [f"## {metric.upper()} (%)\n", seed_table(groups, metric, languages)]
    if data is not None:
        for metric in metrics:
            rows = bootstrap_rows(groups, data, metric, languages, resamples, seed)
            summary["bootstrap"][metric] = rows
            parts += [f"## {metric.upper()}: difference to the best DAP variant (percentage points)\n",
                      f"Paired bootstrap over the test utterances ({resamples} resamples, seed {seed}, same "
                      "utterances for both systems, pooled over the seeds both have), corpus-level rates; 95 % "
                      "percentile interval; * the interval excludes 0. Positive: worse than the best DAP variant (the "
                      f"one with the lowest mean {metric.upper()} avg at that sparsity). The dense model (no "
                      "training seed) is compared with all the listed seeds of that variant.\n",
                      bootstrap_table(rows, languages)]
        for metric in metrics:
            rows = bootstrap_rows(groups, data, metric, languages, resamples, seed, reference="adaptive",
                                  against=MONOLINGUAL_BASELINES)
            if rows:
                summary["bootstrap_adaptive"][metric] = rows
                parts += [f"## {metric.upper()}: monolingual baselines against adaptive masking (percentage points)\n",
                          "The same paired bootstrap, each monolingual baseline against adaptive masking at the "
                          "same sparsity. Positive: worse than adaptive masking.\n", bootstrap_table(rows, languages)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "results_seeds.md").write_text("\n".join(parts), encoding="utf-8")
    plot_seeds(groups, metrics, out / "metric_vs_sparsity_seeds.png")
    summary["runs"] = [{k: v for k, v in r.items() if k != "masks"} for runs in groups.values()
                       for r in runs.values()]
    (out / "results_seeds.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def dev_study_table(exp: Path, variants: list[str]) -> str:
    """``recipes/pathways/dev_study.sh``'s table: one row per variant and training seed (folders ``<variant>`` for
    seed 0, ``<variant>_seed<N>``) with dev PER per language, PER/WER averages, steps, mean mask overlap (one
    multilingual model) and the commit each run trained with (its ``train_summary.json`` provenance), then mean ±
    sample std of the PER average over seeds for variants run with several. Empty when no variant has finished."""
    rows = []  # (variant, seed, result, commits)
    for v in variants:
        for folder in sorted(exp.glob(f"{v}*")):
            seed = re.fullmatch(rf"{re.escape(v)}(?:_seed(\d+))?", folder.name)
            for result in sorted(folder.glob("sparsity*/*/result.json")) if seed else []:
                commits = trained_at_commits(result.parent)
                rows.append((v, int(seed[1] or 0), json.loads(result.read_text(encoding="utf-8")), commits))
    if not rows:
        return ""
    langs = sorted(rows[0][2]["per"])
    lines = ["Dev-set study of `recipes/pathways/dev_study.sh` (stage 2 of it wrote this table); commit: the code each "
             "run trained with (its train_summary.json's provenance); other load: not recorded by the script.", "",
             "| variant | seed | " + " | ".join(f"dev PER {lang}" for lang in langs)
             + " | dev PER avg | dev WER avg | steps | mask overlap | commit |",
             "|---|---|" + "---|" * (len(langs) + 5)]
    averages: dict[str, list[float]] = {}
    for v, seed, r, commits in rows:
        per = [r["per"][lang] for lang in langs]
        wer = list(r["wer"].values())
        averages.setdefault(v, []).append(sum(per) / len(per))
        overlap = mean_overlap(r.get("masks") or {}) if r.get("multilingual") else None
        lines.append(f"| {v} | {seed} | " + " | ".join(f"{p:.1f}" for p in per) + f" | {sum(per) / len(per):.2f} | "
                     + (f"{sum(wer) / len(wer):.2f}" if wer else "-") + f" | {r['steps']} | {_fmt(overlap, 3)} | "
                     + f"{'/'.join(commits) or '-'} |")
    several = {v: a for v, a in averages.items() if len(a) > 1}
    if several:
        lines += ["", "| variant | seeds | dev PER avg, mean ± std over seeds |", "|---|---|---|"]
        lines += [f"| {v} | {len(a)} | {statistics.mean(a):.2f} ± {statistics.stdev(a):.2f} |"
                  for v, a in several.items()]
    return "\n".join(lines) + "\n"
