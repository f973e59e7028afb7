"""Gradual sparsity schedule (Zhu & Gupta 2017): s(t) = s_f + (s_i - s_f) * (1 - (t - t0) / n)^3, clamped; or
linear, s(t) = s_i + (s_f - s_i) * (t - t0) / n (PARP's "growing" variant raises the sparsity linearly).

Hand-written (five lines) because ``torch.ao.pruning.CubicSL`` drives a ``BaseSparsifier`` with one mask per
tensor and cannot serve per-language masks; the formula is the same.
"""
from __future__ import annotations

from dataclasses import dataclass

RAMP_SHAPES = ("cubic", "linear")


@dataclass(frozen=True)
class SparsitySchedule:
    """Sparsity (fraction of prunable weights masked) as a function of the global step.

    ``initial`` at ``start_step`` rising cubically (``shape``: ``cubic``) or linearly (``linear``) to ``final`` at
    ``start_step + ramp_steps`` and constant after (``ramp_steps = 0`` or ``initial == final``: constant). The
    schedule is a pure function of the step, so resuming a run at its checkpointed global step resumes the schedule.
    """

    initial: float
    final: float
    start_step: int = 0
    ramp_steps: int = 0
    shape: str = "cubic"

    def __post_init__(self):
        if self.shape not in RAMP_SHAPES:
            raise ValueError(f"schedule: shape must be one of {RAMP_SHAPES}, got {self.shape!r}")
        for name in ("initial", "final"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"schedule: {name} sparsity must be in [0, 1), got {getattr(self, name)}")

    def at(self, step: int) -> float:
        if self.ramp_steps <= 0 or step >= self.start_step + self.ramp_steps:
            return self.final
        progress = max(0.0, (step - self.start_step) / self.ramp_steps)
        if self.shape == "linear":
            return self.initial + (self.final - self.initial) * progress
        return self.final + (self.initial - self.final) * (1.0 - progress) ** 3
