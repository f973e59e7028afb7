"""The global budget: the preserved ratio of the whole model's parameters and/or MACs (or latency), and the
action wall.

"Preserved ratio" counts the *whole* model (subsampling front end, conformer blocks, output layer), not just the
prunable parts. ``params+flops`` (the default) requires both the parameter ratio and the MAC ratio (one utterance
of ``frames`` input frames) to stay within the target; ``params``, ``flops`` and ``latency`` (the measured per-layer
lookup table of :mod:`.latency`) constrain one quantity each; any ``+``-joined combination of the three
(``params+flops+latency``) requires every one of its ratios to stay within the target. With a width multiple
(``multiple`` > 1) a layer keeps only multiples of it, or its dense width (:func:`.latency.width_grid`), so plans
land on the latency table's measured points.

MACs of the mini recipe's model (144-dim, 4 blocks; 630 M MACs for 4 s, equal to torch's FlopCounterMode): Conv2d
subsampling #2 plus the embedding linear 390 M (62 %), Conv2d #1 10 M (1.6 %), each block 57 M (two feed-forwards
16.4 M each, rel-pos attention 17.9 M, conv module 6.4 M), output layer 1.1 M. Parameters are spread the other way:
front end 22 %, feed-forwards 51 %, attention 16 %, conv modules 10 %.

Why ``params+flops`` is the default (mini model, preserved ratio 0.5, 1 thread, benchmarks/autodfp_speed.py, median
of interleaved runs on a shared machine; benchmarks/results/autodfp_speed_mini_multi_flat*.md): a preserved ratio
should give a proportionally smaller *and* faster model, and each single quantity leaves the search a loophole
that it uses, because its reward (output distortion) favours keeping whatever the budget counts as cheap. Under
``flops`` the agent prunes the front end and keeps the blocks (1.20-1.39x faster than dense; ranges over 2-4 benchmark
runs); under ``params`` it keeps the front end, few parameters but most of the MACs (1.37-1.47x); the ``latency``
table of isolated layers did not predict decoding time (1.23-1.43x). Counting both closes both loopholes:
1.57-1.62x (uniform L1 at the same budget: 1.83-2.16x). The latency table is now measured in the whole model
(:mod:`.latency`), to be combined as ``params+flops+latency`` with a width multiple; how well it predicts decoding
time is checked by ``benchmarks/autodfp_speed.py --latency-table`` (README: AutoDFP).
"""
from __future__ import annotations

import math

from asrprune.pruning.autodfp.latency import LatencyTable, width_grid
from asrprune.model.conformer_layout import conformer_dims, encoder_layers
from asrprune.pruning.autodfp.units import layer_costs, layer_params

# MACs are counted for a 4 s utterance (test utterances of the mini recipe average 3.4 s).
REFERENCE_FRAMES = 400
# No layer keeps fewer than this fraction of its units (and never fewer than one unit).
MIN_KEEP_FRACTION = 0.1
BASE_METRICS = ("params", "flops", "latency")


def minimum_widths(layers) -> list[int]:
    """The fewest units each layer may keep (:data:`MIN_KEEP_FRACTION`, at least one)."""
    return [max(1, math.ceil(MIN_KEEP_FRACTION * layer.width)) for layer in layers]


class Budget:
    """Preserved-ratio budget of ``module``'s model (the reference is the model as given).

    Args:
        module: a CTCModule; metric: ``"latency"`` (seconds, needs ``latency``), ``"flops"`` (MACs),
        ``"params"``, or several joined by ``+`` (e.g. ``"params+flops"``: every ratio at most ``preserve``; the
        ratio is the largest of them, and per-layer costs, which only feed the agent's state, are the mean of
        their shares); preserve: the ratio in (0, 1] that a pruned model's cost may not exceed; frames: utterance
        length for MACs; latency: the :class:`.latency.LatencyTable` of this model (see :func:`minimum_widths`),
        measured with the same ``multiple``; multiple: the width multiple every layer of at least two multiples
        keeps to (1: any width).
    """

    def __init__(self, module, metric: str, preserve: float, frames: int = REFERENCE_FRAMES,
                 latency: LatencyTable | None = None, multiple: int = 1):
        parts = metric.split("+")
        if not parts or any(p not in BASE_METRICS for p in parts) or len(set(parts)) != len(parts):
            raise ValueError(f"budget metric {metric!r}: one of {BASE_METRICS} or several joined by '+'")
        if ("latency" in parts) != (latency is not None):
            raise ValueError("budget: a latency table is needed for, and only for, the latency metric")
        if latency is not None and latency.multiple != multiple:
            raise ValueError(f"budget: latency table measured with width multiple {latency.multiple}, not {multiple}")
        model = module.model
        self.metric, self.preserve, self.frames, self.latency = metric, preserve, frames, latency
        self.layers = encoder_layers(model)
        self.dims = conformer_dims(model)
        self.dense = [layer.width for layer in self.layers]
        # every width a layer may keep, ascending: from its minimum (or the first multiple above) to its dense width
        self.allowed = [width_grid(w, m, w - m + 1, multiple) for w, m in zip(self.dense, minimum_widths(self.layers))]
        self.minimum = [a[0] for a in self.allowed]
        self.parts = ([Budget(module, m, preserve, frames, latency if m == "latency" else None, multiple)
                       for m in parts] if len(parts) > 1 else [])
        if self.parts:
            self.fixed = 0.0
        elif metric == "latency":
            self.fixed = latency.fixed
        elif metric == "params":
            self.fixed = sum(p.numel() for p in model.parameters()) - sum(layer_params(self.layers, self.dense,
                                                                                       self.dims))
        else:
            self.fixed = layer_costs(self.layers, self.dense, self.dims, frames)[1]
        self.dense_cost = self.cost(self.dense)
        lowest = self.ratio(self.minimum)
        if not lowest <= preserve <= 1:
            raise ValueError(f"preserve {preserve}: must lie in [{lowest:.3f}, 1] for this model ({metric})")

    def per_layer(self, widths: list[int]) -> list[float]:
        """Cost of each layer at ``widths``."""
        if self.parts:
            shares = [[c / part.dense_cost for c in part.per_layer(widths)] for part in self.parts]
            return [sum(layer) / len(shares) for layer in zip(*shares)]
        if self.metric == "latency":
            c1 = widths[0]  # subsampling.0 comes first (encoder_layers)
            return [self.latency.lookup(layer, w, c1) for layer, w in zip(self.layers, widths)]
        if self.metric == "params":
            return layer_params(self.layers, widths, self.dims)
        return layer_costs(self.layers, widths, self.dims, self.frames)[0]

    def cost(self, widths: list[int]) -> float:
        if self.parts:  # the binding part's ratio (dense: 1)
            return max(part.ratio(widths) for part in self.parts)
        return sum(self.per_layer(widths)) + self.fixed

    def ratio(self, widths: list[int]) -> float:
        """Preserved ratio of ``widths`` (one width per layer)."""
        return self.cost(widths) / self.dense_cost

    def keep_range(self, prefix: list[int]) -> tuple[int, int]:
        """The action walls of layer ``len(prefix)``: (fewest, most) units it may keep given the widths chosen for
        the layers before it, both allowed widths. The upper wall is AMC's (:meth:`max_keep`): the budget is never
        exceeded. The lower wall keeps the budget reachable when every later layer stays dense, so an episode spends
        its whole budget (up to one allowed step of the last layer) and methods compare at equal cost."""
        t = len(prefix)
        most = self.max_keep(prefix)
        allowed = self.allowed[t]
        rest = self.dense[t + 1:]
        lo, hi = 0, allowed.index(most)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.ratio(prefix + [allowed[mid]] + rest) >= self.preserve - 1e-9:
                hi = mid
            else:
                lo = mid + 1
        return allowed[lo], most

    def max_keep(self, prefix: list[int]) -> int:
        """The action wall (AMC): the most units layer ``len(prefix)`` may keep (an allowed width), given the widths
        already chosen for the layers before it, such that the budget is still met when every later layer keeps its
        minimum."""
        t = len(prefix)
        allowed = self.allowed[t]
        rest = self.minimum[t + 1:]
        lo, hi = 0, len(allowed) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.ratio(prefix + [allowed[mid]] + rest) <= self.preserve + 1e-9:
                lo = mid
            else:
                hi = mid - 1
        return allowed[lo]

    def snap(self, t: int, width: float, fewest: int, most: int) -> int:
        """The allowed width of layer ``t`` nearest to ``width`` within [``fewest``, ``most``] (both allowed)."""
        return min((w for w in self.allowed[t] if fewest <= w <= most), key=lambda w: (abs(w - width), w))
