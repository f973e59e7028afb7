"""Apply a per-layer plan (units to keep, reconstruction strength) and build the physically smaller model.

A model with weight masks (shared or per-language pathways) is pruned as well: units are chosen and folded on the
weights some language uses (θ ⊙ the union of the mask rows, :func:`unit_state`; values kept only for regrowth are
dropped), and each mask row and score tensor loses the same rows/columns as its weight, so every language keeps
its pathway inside the smaller model. A fold adds a pruned unit's columns into a kept unit's under the kept unit's
masks, so with masks it is approximate even where it is exact for a dense model; the distortion check
(:mod:`.distortion`) measures every language's pathway.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from asrprune.model.conformer_layout import Layer, Slot, encoder_layers, widths_dict
from asrprune.model.mask_storage import is_mask_state_key, masks_key, original_key, plain_key, scores_key
from asrprune.pruning.autodfp.reconstruction import LstsqContext, compensate, reconstruction_modes
from asrprune.pruning.autodfp.similarity import importance
from asrprune.training.lightning_module import CTCModule

# Neuron Merging's threshold: a pruned unit whose best cosine to a kept unit is lower is not folded.
MIN_COSINE = 0.1


@dataclass(frozen=True)
class LayerPlan:
    """Decision for one layer: how many units to ``keep`` (by L1 importance) and the reconstruction ``strength``
    in [0, 1] (0: plain pruning; 1: Neuron Merging's full scale)."""

    keep: int
    strength: float


def unit_state(model) -> dict[str, torch.Tensor]:
    """The encoder's tensors (detached copies) under the keys of :func:`encoder_layers`' slots: a masked weight as
    θ ⊙ (union of its mask rows), masks and scores left out. Of a dense model: its encoder state dict."""
    state = {}
    for key, value in model.encoder.state_dict().items():
        if not is_mask_state_key(key):
            state[plain_key(key)] = value.detach().clone()
    if model.masks is not None:
        for name in model.masks.names:
            state[f"{name}.weight"] *= model.masks.mask(name).any(0)
    return state


def _mask_slices(model, layer: Layer) -> list[tuple[str, int, Slot]]:
    """(encoder state key, dim that indexes units, the weight's slot) of the masks and scores that follow
    ``layer``'s slots."""
    if model.masks is None:
        return []
    masked, rows = set(model.masks.names), range(model.masks.state.num_masks)
    slices = []
    for slot in layer.inputs + layer.outputs:
        name = slot.key.removesuffix(".weight")
        if name in masked:
            slices.append((masks_key("", name), slot.dim + 1, slot))
            if model.masks.spec["scores"]:
                slices += [(scores_key("", name, row), slot.dim, slot) for row in rows]
    return slices


def prune_module(module: CTCModule, plan: list[LayerPlan], min_cosine: float = MIN_COSINE,
                 reconstruction: str | dict | None = None, context: LstsqContext | None = None) -> CTCModule:
    """A new, smaller :class:`CTCModule` with ``plan`` (one entry per layer of
    :func:`asrprune.model.conformer_layout.encoder_layers`) applied to ``module``'s encoder, layer by layer in
    forward order (each layer's similarities see the earlier layers' folds). Its hyperparameters carry
    ``model.encoder_widths`` so a saved checkpoint reloads at these shapes; masks and scores are sliced along with
    their weights. ``module`` is not modified.

    ``reconstruction`` picks the compensation per unit kind (:func:`.reconstruction.reconstruction_modes`: None is
    its measured default ``"lstsq,conv=none"``; ``"none"``, ``"fold"``, ``"fold,ffn=lstsq"``...).
    ``lstsq`` draws its synthetic inputs from ``context`` (default: :class:`.reconstruction.LstsqContext` of this
    model with its defaults)."""
    model = module.model
    layers = encoder_layers(model)
    if len(plan) != len(layers):
        raise ValueError(f"plan has {len(plan)} entries for {len(layers)} prunable layers")
    modes = reconstruction_modes(reconstruction)
    if context is None and "lstsq" in modes.values():
        context = LstsqContext(model)
    state = unit_state(model)
    mask_state = {k: v.clone() for k, v in model.encoder.state_dict().items() if is_mask_state_key(k)}
    widths = []
    for layer, step in zip(layers, plan):
        if not 1 <= step.keep <= layer.width:
            raise ValueError(f"{layer.name}: keep {step.keep} outside [1, {layer.width}]")
        order = importance(state, layer, layer.width).argsort(descending=True)
        kept, pruned = order[: step.keep].sort().values, order[step.keep:].sort().values
        compensate(state, layer, layer.width, kept, pruned, step.strength, min_cosine, modes[layer.kind], context)
        for slot in layer.inputs + layer.outputs:
            state[slot.key] = state[slot.key].index_select(slot.dim, slot.indices(kept, layer.width)).contiguous()
        for key, dim, slot in _mask_slices(model, layer):
            mask_state[key] = mask_state[key].index_select(dim, slot.indices(kept, layer.width)).contiguous()
        widths.append(step.keep)
    hparams = dict(module.hparams)
    hparams["model"] = {**dict(hparams["model"]), "encoder_widths": widths_dict(layers, widths)}
    pruned_module = CTCModule(**hparams)
    masked = set(model.masks.names) if model.masks is not None else set()
    full = {k: v for k, v in model.state_dict().items() if not k.startswith("encoder.")}
    for key, value in state.items():
        name = key.removesuffix(".weight")
        full["encoder." + (original_key("", name) if name in masked else key)] = value
    full.update({f"encoder.{k}": v for k, v in mask_state.items()})
    pruned_module.model.load_state_dict(full, strict=True)
    return pruned_module.eval()
