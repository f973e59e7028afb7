"""``asrprune autodfp-table``: one table of the pruned models: PER per language, size, MACs, decoding speed.

With ``--data``, first decodes every model on ``<data>/test_<lang>`` whose decoding directory has no results
yet, or results of other weights (a model pruned again under the same name), in this one process, with the
function behind ``asrprune decode`` (greedy CTC, PER). Then reads, per model,
the checkpoint, its ``asrprune autodfp`` summary (``<ckpt>.json``) and its decoding directories
(``<decode_root>/<name>/test_<lang>/{results,decode_summary}.json``); the first model is the dense reference of
the speed-up (sum of the decoding seconds over the languages, feature extraction included, as ``asrprune decode``
measures them).

Where a method and ratio were searched with several seeds (``asrprune autodfp --seed``), a second table
(``<out stem>_seeds.md``) gives per method and ratio the mean PER over languages as mean ± sample standard
deviation over the seeds, its range and each seed's value: the agent against random search is a claim about search
seeds, not about one run.

With ``--data``, a third table (``<out stem>_bootstrap.md``, rows in ``_bootstrap.json``) compares methods at each
ratio on the same test utterances: the difference of mean PER (agent - random search: does learning beat sampling;
agent - uniform L1; merge - L1: does reconstruction help) with a 95 % paired bootstrap interval over utterances
(:func:`asrprune.scoring.bootstrap.paired_bootstrap`, each method's search seeds pooled), so that a difference the
seed table shows can be told from the noise of the test set.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from asrprune.benchmarking.provenance import file_sha256
from asrprune.cli_options import add_out
from asrprune.decoding.decode_dir import decode_data_dir
from asrprune.scoring.bootstrap import format_interval, paired_bootstrap, paired_errors

# (method, reference) pairs of the bootstrap table: the questions issue 16 asks of AutoDFP's two ideas
COMPARISONS = (("agent", "random"), ("agent", "l1"), ("merge", "l1"), ("agent", "merge"))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise OSError(f"{path}: cannot read ({error.strerror})") from error


def model_row(checkpoint: Path, decode_dir: Path, langs: list[str]) -> dict:
    """Figures of one pruned model (see the module docstring for the files read)."""
    summary = _read_json(Path(str(checkpoint) + ".json"))
    row = {
        "model": checkpoint.stem, "method": summary["method"], "metric": summary["metric"],
        "preserve": summary["preserve"], "seed": summary["seed"],
        "achieved_ratio": summary["achieved_ratio"], "params": summary["params"],
        "size_mb": round(checkpoint.stat().st_size / 1e6, 2), "macs_m": round(summary["macs"] / 1e6, 1),
        "search_seconds": summary["search_seconds"], "distortion": summary["distortion"], "per": {},
        "decode_seconds": 0.0,
    }
    for lang in langs:
        d = decode_dir / checkpoint.stem / f"test_{lang}"
        results = _read_json(d / "results.json")
        per = [r for r in results if r["metric"].startswith("PER")]
        if not per:
            raise ValueError(f"{d / 'results.json'}: no PER row")
        row["per"][lang] = round(per[0]["rates"]["error_rate"], 2)
        row["decode_seconds"] += _read_json(d / "decode_summary.json")["decode_seconds"]
    row["mean_per"] = round(sum(row["per"].values()) / len(langs), 2)
    row["decode_seconds"] = round(row["decode_seconds"], 2)
    return row


def decoded_weights(out: Path) -> str | None:
    """Hash of the checkpoint that decoding directory ``out`` was made from (its provenance), or None where it has
    no finished results."""
    if not (out / "results.json").exists():
        return None
    try:
        return next(iter(_read_json(out / "decode_summary.json")["provenance"]["checkpoints"].values()))
    except (OSError, ValueError, KeyError, StopIteration):  # unreadable or without a record: decode again
        return None


def decode_missing(checkpoints: list[Path], decode_dir: Path, data: Path, langs: list[str]) -> None:
    """Decode (greedy, PER) each checkpoint on each ``data/test_<lang>`` lacking ``results.json`` or holding the
    results of other weights (by checkpoint hash)."""
    for checkpoint in checkpoints:
        weights = file_sha256(checkpoint)
        for lang in langs:
            out = decode_dir / checkpoint.stem / f"test_{lang}"
            if decoded_weights(out) != weights:
                decode_data_dir(checkpoint, data / f"test_{lang}", out)


def write_table(checkpoints: list[Path], decode_dir: Path, langs: list[str], out: Path) -> list[dict]:
    """Write ``out`` (markdown), ``out`` with suffix .json and, where some method and ratio have several seeds,
    :func:`seed_table` to ``<out stem>_seeds.md``; the first checkpoint is the dense reference."""
    rows = [model_row(c, decode_dir, langs) for c in checkpoints]
    dense = rows[0]["decode_seconds"]
    for row in rows:
        row["speedup"] = round(dense / row["decode_seconds"], 2) if row["decode_seconds"] else None
    head = (["model", "method", "preserved ratio of (budget / achieved)"] + [f"PER {lang}" for lang in langs]
            + ["mean PER", "params", "size MB", "MMACs (4 s)", "decode s", "speed-up", "search s", "output KL"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = ([r["model"], r["method"], f"{r['metric']} {r['preserve']} / {r['achieved_ratio']:.3f}"]
                 + [f"{r['per'][lang]:.1f}" for lang in langs]
                 + [f"{r['mean_per']:.1f}", str(r["params"]), f"{r['size_mb']:.1f}", f"{r['macs_m']:.0f}",
                    f"{r['decode_seconds']:.1f}", f"{r['speedup']:.2f}x", f"{r['search_seconds']:.0f}",
                    f"{r['distortion']:.3f}"])
        lines.append("| " + " | ".join(cells) + " |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    seeds, seeds_path = seed_table(rows), seed_table_path(out)
    if seeds is None:
        seeds_path.unlink(missing_ok=True)  # an earlier run's, for other models
    else:
        seeds_path.write_text(seeds, encoding="utf-8")
    return rows


def seed_table_path(out: Path) -> Path:
    """Where :func:`write_table` writes the seed table of the table ``out``."""
    return out.with_name(f"{out.stem}_seeds.md")


def seed_table(rows: list[dict]) -> str | None:
    """Markdown: per (method, budget, preserved ratio) with more than one seed among ``rows`` (rows of
    :func:`model_row`), the mean PER's mean ± sample std over seeds, range and per-seed values; None if no group has
    several seeds."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["metric"], row["preserve"]), []).append(row)
    lines = ["| method | preserved ratio | seeds | mean PER (mean ± std) | range | per seed |",
             "|---|---|---|---|---|---|"]
    for (method, metric, preserve), group in groups.items():
        if len(group) < 2:
            continue
        group = sorted(group, key=lambda r: r["seed"])
        pers = [r["mean_per"] for r in group]
        per_seed = ", ".join(f"{r['seed']}: {r['mean_per']:.2f}" for r in group)
        lines.append(f"| {method} | {metric} {preserve} | {len(pers)} | {statistics.mean(pers):.2f} ± "
                     f"{statistics.stdev(pers):.2f} | {min(pers):.2f}-{max(pers):.2f} | {per_seed} |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else None


def comparison_rows(rows: list[dict], decode_dir: Path, data: Path, langs: list[str],
                    comparisons=COMPARISONS, resamples: int = 2000, seed: int = 0) -> list[dict]:
    """For every (method, reference) of ``comparisons`` present at the same budget and ratio among ``rows`` (rows of
    :func:`model_row`): the paired bootstrap of mean PER(method) - mean PER(reference) over the test utterances of
    ``data/test_<lang>``, each side's seeds pooled; one dict per comparison (``vars`` of the result under
    ``average``, the seeds of each side)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["metric"], row["preserve"]), []).append(row)
    out = []
    for (method, metric, preserve), models in groups.items():
        for a, b in comparisons:
            references = groups.get((b, metric, preserve))
            if method != a or not references:
                continue
            errors_a, errors_b, units = {}, {}, {}
            for lang in langs:
                errors_a[lang], errors_b[lang], units[lang] = paired_errors(
                    [decode_dir / m["model"] / f"test_{lang}" for m in models],
                    [decode_dir / m["model"] / f"test_{lang}" for m in references], data / f"test_{lang}", "per")
            result = paired_bootstrap(errors_a, errors_b, units, resamples, seed=seed)
            out.append({"method": a, "reference": b, "metric": metric, "preserve": preserve,
                        "seeds": sorted(m["seed"] for m in models),
                        "reference_seeds": sorted(m["seed"] for m in references), "average": vars(result)})
    return sorted(out, key=lambda r: (-r["preserve"], [c[0] for c in comparisons].index(r["method"])))


def comparison_table(rows: list[dict]) -> str:
    """Markdown of :func:`comparison_rows`: the difference in mean PER (percentage points, negative: the method is
    better) with its 95 % interval, ``*`` where it excludes 0, and the share of resamples where the method is not
    better."""
    lines = ["| preserved ratio | method | vs | seeds | ΔPER mean [95 % CI] | resamples not better |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        seeds = f"{len(r['seeds'])} vs {len(r['reference_seeds'])}"
        lines.append(f"| {r['metric']} {r['preserve']} | {r['method']} | {r['reference']} | {seeds} | "
                     f"{format_interval(r['average'])} | {r['average']['p_not_better']:.3f} |")
    return "\n".join(lines) + "\n"


def comparison_table_path(out: Path) -> Path:
    """Where :func:`run_cli` writes the bootstrap comparison of the table ``out`` (and its rows, ``.json``)."""
    return out.with_name(f"{out.stem}_bootstrap.md")


def run_cli(args: argparse.Namespace) -> None:
    checkpoints, decode_dir, langs, out = ([Path(c) for c in args.checkpoints], Path(args.decode_dir),
                                           args.langs.split(), Path(args.out))
    if args.data:
        decode_missing(checkpoints, decode_dir, Path(args.data), langs)
    rows = write_table(checkpoints, decode_dir, langs, out)
    print(out.read_text(encoding="utf-8"), end="")
    seeds = seed_table_path(out)
    if seeds.exists():
        print(seeds.read_text(encoding="utf-8"), end="")
    if args.data:
        comparisons = comparison_rows(rows, decode_dir, Path(args.data), langs)
        path = comparison_table_path(out)
        if comparisons:
            path.write_text(comparison_table(comparisons), encoding="utf-8")
            path.with_suffix(".json").write_text(json.dumps(comparisons, indent=1) + "\n", encoding="utf-8")
            print(path.read_text(encoding="utf-8"), end="")
        else:  # an earlier run's, for other models
            path.unlink(missing_ok=True)


def register_cli(subparsers) -> None:
    """Add the ``autodfp-table`` sub-command."""
    parser = subparsers.add_parser(
        "autodfp-table",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: asrprune autodfp-table --decode-dir exp/autodfp/decode --langs 'de fr' --out "
        "exp/autodfp/RESULTS.md exp/autodfp/dense.ckpt exp/autodfp/agent_0.5.ckpt",
    )
    parser.add_argument("checkpoints", nargs="+", help="pruned checkpoints, the dense reference first")
    parser.add_argument("--decode-dir", required=True, help="folder of <model>/test_<lang> decoding directories")
    parser.add_argument("--langs", required=True, help="languages, space separated")
    parser.add_argument("--data", help="folder of test_<lang> data dirs: decode the models missing results first, "
                        "and compare the methods on their utterances (<out stem>_bootstrap.md)")
    add_out(parser, "markdown table to write (and .json)")
    parser.set_defaults(func=run_cli)
