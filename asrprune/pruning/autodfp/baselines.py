"""Baselines without fine-tuning: uniform L1-norm pruning (``l1``: strength 0, no compensation), and uniform pruning
with the run's reconstruction at full strength (``merge``: :mod:`.reconstruction`, by default the least-squares refit
except for conv-module channels; with ``--reconstruction fold`` the Neuron-Merging-like fold, scale s_jk = m_j / m_k,
cosine threshold 0.1, that the name comes from)."""
from __future__ import annotations

from asrprune.pruning.autodfp.budget import Budget
from asrprune.pruning.autodfp.prune import LayerPlan

METHOD_STRENGTH = {"l1": 0.0, "merge": 1.0}


def uniform_widths(budget: Budget) -> list[int]:
    """The same keep fraction r in every layer (rounded down to an allowed width of the budget, at least the layer
    minimum), the largest r whose widths meet the budget (bisection; the widths grow monotonically with r)."""
    def widths(r: float) -> list[int]:
        return [max([a for a in allowed if a <= max(allowed[0], round(r * w))])
                for w, allowed in zip(budget.dense, budget.allowed)]

    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if budget.ratio(widths(mid)) <= budget.preserve + 1e-9:
            lo = mid
        else:
            hi = mid
    return widths(lo)


def uniform_plan(budget: Budget, method: str) -> list[LayerPlan]:
    """The plan of baseline ``method`` (``"l1"`` or ``"merge"``)."""
    if method not in METHOD_STRENGTH:
        raise ValueError(f"baseline method {method!r}: choose one of {sorted(METHOD_STRENGTH)}")
    return [LayerPlan(w, METHOD_STRENGTH[method]) for w in uniform_widths(budget)]
