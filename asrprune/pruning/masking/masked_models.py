"""Turn a (dense or masked) checkpoint into a masked module with chosen masks, and read masks back.

θ is copied unmasked, so a weight pruned earlier keeps the value it had (masks, not weights, say what is pruned).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from asrprune.model.mask_registry import SPEC_DEFAULTS
from asrprune.model.mask_scores import initial_scores, topk_mask
from asrprune.model.mask_storage import is_mask_state_key, original_key, plain_key
from asrprune.model.store import ENCODER_PREFIX, load_model
from asrprune.training.lightning_module import CTCModule

Masks = dict[str, torch.Tensor]  # prunable weight name -> bool (K, *shape), or (*shape) for one row


def plain_state(module: CTCModule) -> dict[str, torch.Tensor]:
    """``state_dict`` with masked weights under their dense names (``...w_1.weight``) and no masks/scores."""
    state = {}
    for key, value in module.state_dict().items():
        if not is_mask_state_key(key):
            state[plain_key(key)] = value
    return state


def with_masks(module: CTCModule, spec: Mapping, masks: Masks | None = None,
               weights: Mapping[str, torch.Tensor] | None = None) -> CTCModule:
    """A new module with ``module``'s hyperparameters and weights (or ``weights``, a :func:`plain_state`), masked
    per ``spec`` (:data:`asrprune.model.mask_registry.SPEC_DEFAULTS`) with ``masks`` (all ones if None).

    With ``spec["scores"]`` the scores are initialised so that their top-k is the mask (:func:`initial_scores`).
    """
    spec = {**SPEC_DEFAULTS, **spec}
    hparams = dict(module.hparams)
    hparams["model"] = {**hparams["model"], "masks": spec}
    new = CTCModule(**hparams)
    state = dict(weights if weights is not None else plain_state(module))
    for name in new.model.masks.names:
        state[original_key(ENCODER_PREFIX, name)] = state.pop(f"{ENCODER_PREFIX}{name}.weight")
    missing, unexpected = new.load_state_dict(state, strict=False)
    stray = [k for k in missing if not is_mask_state_key(k)]
    if stray or unexpected:
        raise ValueError(f"weights do not fit the model: missing {stray[:5]}, unexpected {unexpected[:5]}")
    model_masks = new.model.masks
    if masks is not None:
        for name, mask in masks.items():
            model_masks.mask(name).copy_(mask.expand_as(model_masks.mask(name)))
    if spec["scores"]:
        with torch.no_grad():
            for name in model_masks.names:
                for row in range(model_masks.state.num_masks):
                    model_masks.scores(name, row).copy_(
                        initial_scores(model_masks.weight(name), model_masks.mask(name)[row])
                    )
    return new


def read_masks(checkpoint: str | Path) -> Masks:
    """The masks (K, *shape) of a masked checkpoint or export."""
    masks = load_model(checkpoint).model.masks
    if masks is None:
        raise ValueError(f"{checkpoint}: a dense model has no masks")
    return {name: masks.mask(name).clone() for name in masks.names}


def magnitude_masks(module: CTCModule, sparsity: float, within: Masks | None = None) -> Masks:
    """One-row masks keeping the largest |θ| of each prunable tensor; with ``within`` (one-row masks) only weights
    kept there are candidates (IMP rounds: masks only shrink). ``module`` must have masks attached."""
    masks = module.model.masks
    result = {}
    for name in masks.names:
        score = masks.weight(name).detach().abs()
        if within is not None:
            score = torch.where(within[name].view_as(score), score, torch.full_like(score, -1.0))
        result[name] = topk_mask(score, sparsity).unsqueeze(0)
    return result
