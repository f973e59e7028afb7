"""What an importer kept and dropped, with the reason for every drop.

Every importer fills one :class:`PrepReport` per output data directory and saves it beside the data as
``prep_summary.json`` (counts per reason) and ``dropped.tsv`` (one line per dropped utterance: id, reason,
detail), and prints the summary, so nothing disappears silently.
"""
from __future__ import annotations

import collections
import json
from pathlib import Path


class PrepReport:
    """Counts of kept and dropped utterances for one data directory."""

    def __init__(self, name: str):
        self.name = name
        self.kept = 0
        self.kept_seconds = 0.0
        self.dropped: list[tuple[str, str, str]] = []  # (uttid, reason, detail)

    def keep(self, duration: float) -> None:
        """Record one kept utterance of ``duration`` seconds."""
        self.kept += 1
        self.kept_seconds += duration

    def drop(self, uttid: str, reason: str, detail: str = "") -> None:
        """Record one dropped utterance; ``reason`` is a short category, ``detail`` names the file/field/value."""
        self.dropped.append((uttid, reason, " ".join(detail.split())))

    def drop_counts(self) -> dict[str, int]:
        return dict(collections.Counter(reason for _, reason, _ in self.dropped))

    def summary(self) -> dict:
        return {
            "name": self.name,
            "kept": self.kept,
            "kept_hours": round(self.kept_seconds / 3600, 4),
            "dropped": len(self.dropped),
            "dropped_by_reason": self.drop_counts(),
        }

    def save(self, directory: str | Path) -> None:
        """Write ``prep_summary.json`` and ``dropped.tsv`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "prep_summary.json").write_text(json.dumps(self.summary(), indent=2) + "\n", encoding="utf-8")
        with open(directory / "dropped.tsv", "w", encoding="utf-8") as f:
            f.write("uttid\treason\tdetail\n")
            for row in self.dropped:
                f.write("\t".join(row) + "\n")

    def format(self) -> str:
        """One human-readable line, e.g. ``train_de: kept 590 (0.51 h), dropped 3 (empty text: 2, ...)``."""
        counts = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.drop_counts().items()))
        dropped = f"dropped {len(self.dropped)}" + (f" ({counts})" if counts else "")
        return f"{self.name}: kept {self.kept} ({self.kept_seconds / 3600:.2f} h), {dropped}"
