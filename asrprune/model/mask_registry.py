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
        ``dormant_trainable`` (see :mod:`asrprune.model.mask_parametrization`).
        """
        unknown = sorted(set(spec) - set(SPEC_DEFAULTS))
        if unknown:
            raise ValueError(f"model.masks: unknown keys {unknown}; known: {sorted(SPEC_DEFAULTS)}")
        spec = {**SPEC_DEFAULTS, **spec}
        state = MaskState(num_languages if spec["per_language"] else 1, spec["per_language"], spec["dormant_trainable"])
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
