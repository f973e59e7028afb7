"""Apply a per-layer plan (units to keep, reconstruction strength) and build the physically smaller dense model."""
from __future__ import annotations

from dataclasses import dataclass


from asrprune.pruning.autodfp.reconstruction import fold
from asrprune.pruning.autodfp.similarity import importance
from asrprune.pruning.autodfp.units import encoder_layers, widths_dict
from asrprune.training.lightning_module import CTCModule

# Neuron Merging's threshold: a pruned unit whose best cosine to a kept unit is lower is not folded.
MIN_COSINE = 0.1


@dataclass(frozen=True)
class LayerPlan:
    """Decision for one layer: how many units to ``keep`` (by L1 importance) and the reconstruction ``strength``
    in [0, 1] (0: plain pruning; 1: Neuron Merging's full scale)."""

    keep: int
    strength: float


def prune_module(module: CTCModule, plan: list[LayerPlan], min_cosine: float = MIN_COSINE) -> CTCModule:
    """A new, smaller :class:`CTCModule` with ``plan`` (one entry per layer of :func:`.units.encoder_layers`)
    applied to ``module``'s encoder, layer by layer in forward order (each layer's similarities see the earlier
    layers' folds). Its hyperparameters carry ``model.encoder_widths`` so a saved checkpoint reloads at these
    shapes. ``module`` is not modified."""
    model = module.model
    layers = encoder_layers(model)
    if len(plan) != len(layers):
        raise ValueError(f"plan has {len(plan)} entries for {len(layers)} prunable layers")
    state = {k: v.detach().clone() for k, v in model.encoder.state_dict().items()}
    widths = []
    for layer, step in zip(layers, plan):
        if not 1 <= step.keep <= layer.width:
            raise ValueError(f"{layer.name}: keep {step.keep} outside [1, {layer.width}]")
        order = importance(state, layer, layer.width).argsort(descending=True)
        kept, pruned = order[: step.keep].sort().values, order[step.keep:].sort().values
        fold(state, layer, layer.width, kept, pruned, step.strength, min_cosine)
        for slot in layer.inputs + layer.outputs:
            state[slot.key] = state[slot.key].index_select(slot.dim, slot.indices(kept, layer.width)).contiguous()
        widths.append(step.keep)
    hparams = dict(module.hparams)
    hparams["model"] = {**dict(hparams["model"]), "encoder_widths": widths_dict(layers, widths)}
    pruned_module = CTCModule(**hparams)
    full = model.state_dict()
    full.update({f"encoder.{k}": v for k, v in state.items()})
    pruned_module.model.load_state_dict(full, strict=True)
    return pruned_module.eval()
