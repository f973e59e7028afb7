"""ESPnet-style result tables (``RESULTS.md``) and their machine-readable twin (``results.json``).

One row per (dataset, metric): ``Snt`` utterances, ``Wrd`` reference units (phones, words or characters), then
``Corr``/``Sub``/``Del``/``Ins``/``Err`` as percentages of ``Wrd`` and ``S.Err`` as a percentage of ``Snt``, with
one decimal, in the layout of ESPnet's ``RESULTS.md``.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Iterable

from asrprune.scoring.error_rates import ErrorCounts

RESULTS_MARKDOWN = "results.md"
RESULTS_JSON = "results.json"
_COLUMNS = ("dataset", "metric", "Snt", "Wrd", "Corr", "Sub", "Del", "Ins", "Err", "S.Err")
# ErrorCounts properties behind the percentage columns Corr .. S.Err, in column order
_RATES = ("correct_rate", "substitution_rate", "deletion_rate", "insertion_rate", "error_rate", "sentence_error_rate")


@dataclasses.dataclass(frozen=True)
class ResultRow:
    """Scores of one ``dataset`` (e.g. ``test_de``) under one ``metric`` label (e.g. ``"wer"``, ``"PER (greedy)"``)."""

    dataset: str
    metric: str
    counts: ErrorCounts


def markdown_table(rows: Iterable[ResultRow]) -> str:
    """The rows as a GitHub markdown table (header, separator, one line per row, trailing newline)."""
    lines = [_markdown_line(_COLUMNS), _markdown_line(["---"] * len(_COLUMNS))]
    for row in rows:
        c = row.counts
        percentages = [getattr(c, rate) for rate in _RATES]
        cells = [row.dataset.replace("|", "\\|"), row.metric, str(c.sentences), str(c.ref_units)]
        lines.append(_markdown_line(cells + [f"{p:.1f}" for p in percentages]))
    return "\n".join(lines) + "\n"


def write_results(rows: Iterable[ResultRow], out_dir: str | Path) -> None:
    """Write ``results.md`` (:func:`markdown_table`) and ``results.json`` into ``out_dir`` (created if needed).

    ``results.json`` is a list of ``{"dataset", "metric", "counts": {ErrorCounts fields}, "rates": {...}}`` where
    ``rates`` holds the table's percentages under their ErrorCounts property names (``correct_rate``,
    ``substitution_rate``, ``deletion_rate``, ``insertion_rate``, ``error_rate``, ``sentence_error_rate``), ``null``
    where not finite (insertions into empty references only). :func:`read_results` reads it back.
    """
    rows = list(rows)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESULTS_MARKDOWN).write_text(markdown_table(rows), encoding="utf-8")
    records = [
        {
            "dataset": row.dataset,
            "metric": row.metric,
            "counts": dataclasses.asdict(row.counts),
            "rates": {name: _finite_or_none(getattr(row.counts, name)) for name in _RATES},
        }
        for row in rows
    ]
    (out_dir / RESULTS_JSON).write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_results(out_dir: str | Path) -> list[ResultRow]:
    """The rows of ``out_dir/results.json`` (rates are recomputed from the counts); a malformed file raises
    ``ValueError`` naming it."""
    path = Path(out_dir) / RESULTS_JSON
    text = path.read_text(encoding="utf-8")
    try:
        records = json.loads(text)
        return [
            ResultRow(record["dataset"], record["metric"], ErrorCounts(**record["counts"])) for record in records
        ]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a results file written by write_results ({error})") from error


def _markdown_line(cells: Iterable[str]) -> str:
    return "|" + "|".join(cells) + "|"


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
