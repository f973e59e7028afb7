"""The masks of one model: which weights are masked, the row each forward pass uses, and their statistics.

:meth:`ModelMasks.attach` parametrizes every prunable weight of an ESPnet conformer
(:func:`asrprune.model.conformer_layout.prunable_weights`) with a :class:`~asrprune.model.mask_parametrization.
PathwayMask`: K = one row per language (pathways) or one row shared by all languages. BatchNorm running statistics
stay shared by all languages. ``ConformerCTC`` keeps the registry as ``model.masks`` and maps a language to its row
(``ConformerCTC.mask_row``); the row is set for one forward pass only (:meth:`ModelMasks.selected`).
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from asrprune.model.conformer_layout import PRUNABLE_WEIGHTS, prunable_weights
from asrprune.model.mask_parametrization import MaskState, PathwayMask

# Keys of a mask spec (``model.masks`` in a config / checkpoint hyperparameters).
SPEC_DEFAULTS = {"per_language": True, "scores": False, "dormant_trainable": False}
# Keys a spec may hold besides those, recorded only when given (the specs of earlier checkpoints stay as they were).
OPTIONAL_SPEC = {"adjust": False}


class ModelMasks:
    """The masks of one model: ``names`` (paths under the encoder, e.g. ``encoders.0.feed_forward.w_1``) in order.

    Created by :meth:`attach`; ``spec`` is the full mask spec (:data:`SPEC_DEFAULTS` filled in).
    """

    def __init__(self, state: MaskState, modules: Mapping[str, nn.Module], spec: Mapping):
        self.state = state
        self.spec = dict(spec)
        self._modules = dict(modules)
        self.names = list(modules)

    @classmethod
    def attach(cls, encoder: nn.Module, num_languages: int, spec: Mapping) -> "ModelMasks":
        """Parametrize the prunable weights of an ESPnet conformer ``encoder`` with all-ones masks.

        ``spec``: ``per_language`` (K = num_languages masks, else 1), ``scores`` (per-row score parameters),
        ``dormant_trainable``, ``adjust`` (per-language adjusted values of excluded weights, PARP per pathway; not
        with ``dormant_trainable``) (see :mod:`asrprune.model.mask_parametrization`).
        """
        known = {**SPEC_DEFAULTS, **OPTIONAL_SPEC}
        unknown = sorted(set(spec) - set(known))
        if unknown:
            raise ValueError(f"model.masks: unknown keys {unknown}; known: {sorted(known)}")
        spec = {**SPEC_DEFAULTS, **spec}
        adjust = spec.get("adjust", False)
        if adjust and spec["dormant_trainable"]:
            raise ValueError("model.masks: adjust and dormant_trainable exclude each other (with adjust, excluded "
                             "weights train per-language adjusted values, never the shared weight)")
        state = MaskState(num_languages if spec["per_language"] else 1, spec["per_language"], spec["dormant_trainable"],
                          adjust=adjust)
        modules = {}
        for name in prunable_weights(encoder):
            module = encoder.get_submodule(name)
            # unsafe: skip the trial evaluation (there is no row outside a forward pass; θ ⊙ m keeps θ's shape).
            parametrize.register_parametrization(module, "weight", PathwayMask(module.weight.shape, state,
                                                                                spec["scores"]), unsafe=True)
            modules[name] = module
        if not modules:
            raise ValueError("model.masks: the encoder has none of the prunable modules " + ", ".join(PRUNABLE_WEIGHTS))
        return cls(state, modules, spec)

    @contextlib.contextmanager
    def selected(self, row: int, record: bool) -> Iterator[None]:
        """Mask the weights with row ``row`` inside the block only (one forward pass); ``record``: the pass
        records gradients, so the next optimizer step may change this row's weights."""
        if self.state.current is not None:
            raise RuntimeError(f"mask row {self.state.current} is already selected (nested forward passes)")
        self.state.current = row
        if record:
            self.state.seen.add(row)
        try:
            yield
        finally:
            self.state.current = None

    def parametrization(self, name: str) -> PathwayMask:
        return self._modules[name].parametrizations.weight[0]

    def weight(self, name: str) -> torch.Tensor:
        """The stored (unmasked) weight θ, a Parameter."""
        return self._modules[name].parametrizations.weight.original

    def mask(self, name: str) -> torch.Tensor:
        """Bool (K, *shape), the live buffer."""
        return self.parametrization(name).masks

    def scores(self, name: str, row: int) -> torch.Tensor:
        scores = self.parametrization(name).scores
        if scores is None:
            raise ValueError("these masks were attached without scores (model.masks.scores: false)")
        return scores[row]

    def adjusted(self, name: str) -> torch.Tensor:
        """The adjusted values (float (K, *shape), a Parameter) of ``name``'s excluded weights (``adjust`` only)."""
        adjusted = self.parametrization(name).adjusted
        if adjusted is None:
            raise ValueError("these masks were attached without adjusted values (model.masks.adjust: false)")
        return adjusted

    def magnitude(self, name: str, row: int) -> torch.Tensor:
        """The magnitude row ``row`` ranks: |θ|; with ``adjust``, |θ| where the row keeps the weight and the row's
        |adjusted value| where it excludes it (PARP: kept and zeroed-then-trained weights compete by magnitude)."""
        magnitude = self.weight(name).detach().abs()
        if not self.state.adjust:
            return magnitude
        return torch.where(self.mask(name)[row], magnitude, self.adjusted(name).detach()[row].abs())

    @torch.no_grad()
    def start_adjusted(self, start: str) -> None:
        """Set every row's adjusted values where the row excludes the weight: ``zero`` (PARP) or ``weight`` (θ)."""
        for name in self.names:
            adjusted, excluded = self.adjusted(name), ~self.mask(name)
            value = self.weight(name).detach().expand_as(adjusted) if start == "weight" else 0.0
            adjusted.copy_(torch.where(excluded, value, torch.zeros_like(adjusted)))

    @torch.no_grad()
    def apply_adjusted(self, old: Mapping[str, torch.Tensor], rows, restart: str = "zero") -> None:
        """After rows ``rows`` were re-evaluated (``old``: every name's masks (K, *shape) before), move adjusted
        values (``adjust`` only; see :mod:`asrprune.model.mask_parametrization`):

        - a weight kept by no row before and regrown now by some rows takes the mean of their adjusted values;
        - a weight some row kept before keeps its shared θ (a regrowing language joins that value);
        - each re-evaluated row's adjusted values are zero where the row keeps the weight now (kept weights carry
          none) and restart where it pruned the weight: at zero (``restart`` ``zero``, as PARP zeroes a pruned
          weight) or at θ (``weight``: the pruned weight keeps competing from the value it had). Their AdamW
          moments are left as they are (PARP keeps the optimizer state of a weight it prunes, too).
        """
        if not self.state.adjust:
            return
        rows = list(rows)
        for name in self.names:
            before, now = old[name], self.mask(name)
            adjusted, weight = self.adjusted(name), self.weight(name)
            regrown = (now & ~before)[rows]
            fresh = regrown & ~before.any(0)  # (R, *shape): regrown and unused by every pathway before
            count = fresh.sum(0)
            total = (adjusted[rows] * fresh).sum(0)
            weight.copy_(torch.where(count > 0, total / count.clamp_min(1), weight))
            values = adjusted[rows]
            pruned = (before & ~now)[rows]
            restart_value = weight.expand_as(values) if restart == "weight" else torch.zeros_like(values)
            values = torch.where(pruned, restart_value, values)
            adjusted[rows] = torch.where(now[rows], torch.zeros_like(values), values)

    def score_parameters(self) -> list[nn.Parameter]:
        return [p for name in self.names for p in (self.parametrization(name).scores or [])]

    @torch.no_grad()
    def set_row(self, row: int, masks: Mapping[str, torch.Tensor]) -> None:
        """Replace mask row ``row`` of every weight named in ``masks`` (bool tensors of the weight's shape)."""
        for name, mask in masks.items():
            self.mask(name)[row] = mask

    def num_weights(self) -> int:
        return sum(self.weight(name).numel() for name in self.names)

    def statistics(self, languages: list[str]) -> dict:
        """Per-language sparsity, the union's sparsity and the overlap between languages' masks (fractions).

        ``languages``: the model's languages, in row order when the masks are per-language. ``overlap[i][j]`` =
        |m_i ∧ m_j| / |m_i ∨ m_j| (Jaccard; 1 on the diagonal). With a shared mask the only row is labelled
        ``shared``. ``union_sparsity`` is what must be stored to serve all languages.
        """
        # Accumulated on the masks' device and read once at the end (one host synchronisation, not one per tensor).
        device = self.mask(self.names[0]).device
        rows = range(self.state.num_masks)
        kept = torch.zeros(len(rows), len(rows), dtype=torch.float64, device=device)
        either = torch.zeros_like(kept)
        union = torch.zeros((), dtype=torch.float64, device=device)
        for name in self.names:
            masks = self.mask(name).flatten(1).double()
            kept += masks @ masks.T
            count = masks.sum(1)
            either += count[:, None] + count[None, :] - masks @ masks.T
            union += masks.amax(0).sum()
        kept, either, union = kept.cpu(), either.cpu(), int(union)
        total = self.num_weights()
        labels = languages if self.state.per_language else ["shared"]
        overlap = (kept / either.clamp_min(1)).tolist()
        return {
            "prunable_weights": total,
            "languages": labels,
            "sparsity": {lab: 1 - float(kept[i, i]) / total for i, lab in enumerate(labels)},
            "union_sparsity": 1 - union / total,
            "overlap": overlap,
        }
