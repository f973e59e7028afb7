"""Which recording conditions a split may use: "seen" ones (train, dev, test) or "unseen" ones (transfer).

The transfer test split measures how a model trained on the synthetic corpus does on voices, rooms and channels
it never heard. Every random setting of the corpus therefore belongs to one condition:

- discrete settings (noise kinds, codecs, dry recordings) are split into disjoint sets by the module that owns
  them; espeak voice variants are split between training and the two test splits, which share theirs
  (:mod:`asrprune.synth.voices` says why);
- a continuous setting (a formant shift ratio, a reverberation time in seconds, a cut-off in Hz, ...) is an
  :class:`Interleaved` range: its interval is cut into an odd number of equal bands, the even-numbered ones
  (first, third, ...) seen and the others unseen. The transfer split's values then lie in the gaps between the
  training values, inside the same envelope: a transfer clip is novel without being more extreme, so the PER
  ratio between the two test sets measures generalisation, not an easier or harder range.
"""
from __future__ import annotations

import dataclasses

import numpy as np

SEEN, UNSEEN = "seen", "unseen"
CONDITIONS = (SEEN, UNSEEN)
SPLIT_CONDITION = {"train": SEEN, "dev": SEEN, "test": SEEN, "transfer": UNSEEN}


@dataclasses.dataclass(frozen=True)
class Interleaved:
    """A range ``[low, high]`` (in the setting's unit) cut into ``bands`` equal bands (odd, at least 3),
    alternately seen (the first and last band among them) and unseen."""

    low: float
    high: float
    bands: int = 5

    def __post_init__(self):
        if not self.low < self.high or self.bands < 3 or self.bands % 2 == 0:
            raise ValueError(f"need low < high and an odd number of bands >= 3, got {self}")

    def intervals(self, condition: str) -> tuple[tuple[float, float], ...]:
        """The (low, high) bands of ``condition``, in increasing order."""
        first = CONDITIONS.index(condition)
        width = (self.high - self.low) / self.bands
        return tuple((self.low + i * width, self.low + (i + 1) * width) for i in range(first, self.bands, 2))

    def draw(self, rng: np.random.Generator, condition: str) -> float:
        """A value uniform over the union of ``condition``'s bands (they have equal widths)."""
        intervals = self.intervals(condition)
        low, high = intervals[int(rng.integers(len(intervals)))]
        return float(rng.uniform(low, high))

    def condition_of(self, value: float) -> str:
        """The condition whose band holds ``value`` (a value on a band edge belongs to both; seen is named)."""
        if not self.low <= value <= self.high:
            raise ValueError(f"{value} is outside {self.low}..{self.high}")
        return next(c for c in CONDITIONS if any(lo <= value <= hi for lo, hi in self.intervals(c)))
