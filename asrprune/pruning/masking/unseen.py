"""A new language on a pruned multilingual model: how each choice of pathway decodes it zero-shot and few-shot.

Layout written by ``recipes/pathways/run.sh`` stage 3, one folder per starting point under ``<exp>``:

- ``dense/``: the dense model (no masks), the reference;
- ``union/``, ``closest/``: the pruned model with the new language's mask set by ``asrprune add-language
  --pathway union|closest``.

Each folder holds ``zero_shot.ckpt`` and ``decode_zero_shot/`` (decoded without training), ``few_shot/`` and
``decode_few_shot/`` (fine-tuned with the pathway fixed) and, for pruned starts, ``grown/`` and ``decode_grown/``
(fine-tuned while ``asrprune prune grow`` re-evaluates the pathway). A missing folder gives "-" in the table.
"""
from __future__ import annotations

from pathlib import Path

from asrprune.model.mask_registry import ModelMasks
from asrprune.model.store import load_model
from asrprune.scoring.result_table import RESULTS_JSON, read_results

STARTS = ("dense", "union", "closest")


def _error_rates(decode_dir: Path) -> tuple[float | None, float | None]:
    """(PER, WER) in percent from ``decode_dir/results.json``; None where the directory or the metric is missing."""
    if not (decode_dir / RESULTS_JSON).exists():
        return None, None
    by_metric = {row.metric.split()[0]: row.counts.error_rate for row in read_results(decode_dir)}
    return by_metric.get("PER"), by_metric.get("WER")


def _source_of_row(masks: ModelMasks, languages: list[str], row: int) -> str:
    """Which known language's pathway the mask row equals ("union" if it is the union of the others, else "new")."""
    others = [i for i in range(len(languages)) if i != row]
    for i in others:
        if all(bool((masks.mask(n)[row] == masks.mask(n)[i]).all()) for n in masks.names):
            return languages[i]
    if all(bool((masks.mask(n)[row] == masks.mask(n)[others].any(0)).all()) for n in masks.names):
        return "union"
    return "new"


def pathway_facts(checkpoint: Path, lang: str) -> tuple[float | None, str]:
    """(sparsity of ``lang``'s pathway, where it came from) of a checkpoint; (None, "dense") without masks."""
    model = load_model(str(checkpoint)).model
    if model.masks is None or not model.masks.state.per_language:
        return None, "dense"
    stats = model.masks.statistics(model.languages)
    return stats["sparsity"][lang], _source_of_row(model.masks, model.languages, model.mask_row(lang))


def _last_checkpoint(train_dir: Path) -> Path | None:
    path = train_dir / "checkpoints" / "last.ckpt"
    return path if path.exists() else None


def unseen_language_table(exp: Path, lang: str) -> str:
    """Markdown: one row per start (dense, union, closest) with the pathway's origin and sparsity, zero-shot PER/WER,
    few-shot PER/WER with the pathway fixed, few-shot PER/WER with the pathway grown, and the share of the grown
    pathway's weights that were not in it at the start."""
    header = ["start", "pathway of " + lang, "sparsity", "zero-shot PER", "zero-shot WER", "few-shot PER",
              "few-shot WER", "grown PER", "grown WER", "grown: new weights vs start"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    found = 0
    for start in STARTS:
        folder = exp / start
        if not (folder / "zero_shot.ckpt").exists():
            continue
        found += 1
        sparsity, source = pathway_facts(folder / "zero_shot.ckpt", lang)
        cells = [start, source, "-" if sparsity is None else f"{sparsity:.1%}"]
        for decode in ("decode_zero_shot", "decode_few_shot", "decode_grown"):
            cells += ["-" if v is None else f"{v:.1f}" for v in _error_rates(folder / decode)]
        grown = _last_checkpoint(folder / "grown")
        cells.append("-" if grown is None else _changed_fraction(folder / "zero_shot.ckpt", grown, lang))
        lines.append("| " + " | ".join(cells) + " |")
    if not found:
        raise OSError(f"{exp}: no <start>/zero_shot.ckpt for any start in {STARTS}; run recipes/pathways stage 3")
    return "\n".join(lines) + "\n"


def _changed_fraction(before: Path, after: Path, lang: str) -> str:
    """Share of ``lang``'s kept weights after growing that were not in its pathway before (regrown/taken over)."""
    first, second = load_model(str(before)).model, load_model(str(after)).model
    row = first.mask_row(lang)
    new = kept = 0
    for name in first.masks.names:
        was, now = first.masks.mask(name)[row], second.masks.mask(name)[row]
        new += int((now & ~was).sum())
        kept += int(now.sum())
    return f"{new / max(kept, 1):.1%}"
