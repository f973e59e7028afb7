"""Where a masked weight lives in a state dict, and the compact on-disk form of a masked model.

Storage names: :mod:`torch.nn.utils.parametrize` stores a parametrized weight θ of module ``<name>`` as
``<name>.parametrizations.weight.original`` and the state of its parametrization
(:class:`~asrprune.model.mask_parametrization.PathwayMask`) under ``<name>.parametrizations.weight.0.``: the bool
``masks`` (K, *shape) and, with scores, ``scores.<row>``. These names are derived here and nowhere else
(:func:`original_key`, :func:`masks_key`, :func:`scores_key`, :func:`is_mask_state_key`, :func:`plain_key`), as
PyTorch's pruning utilities derive ``<name>_orig``/``<name>_mask`` in one place.

The compact format (:func:`pack_sparse`/:func:`unpack_sparse`) stores only the kept values of each prunable weight
(those in the union of the masks) plus the masks bit-packed with ``numpy.packbits``; :func:`append_mask_row` gives
an encoder state dict one more mask row (serving a language the masks were not made for).
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import torch

from asrprune.model.mask_registry import ModelMasks
from asrprune.model.mask_scores import initial_scores

SPARSE_FORMAT = "asrprune-sparse-1"

_PARAMETRIZED = ".parametrizations.weight."  # torch.nn.utils.parametrize's container of a parametrized "weight"
_STATE = _PARAMETRIZED + "0."  # the state of its first (only) parametrization, a PathwayMask


def original_key(prefix: str, name: str) -> str:
    """Key of θ (the unmasked weight) of prunable weight ``name`` under ``prefix`` (e.g. ``model.encoder.``)."""
    return f"{prefix}{name}{_PARAMETRIZED}original"


def masks_key(prefix: str, name: str) -> str:
    """Key of the bool masks (K, *shape) of prunable weight ``name``."""
    return f"{prefix}{name}{_STATE}masks"


def scores_key(prefix: str, name: str, row: int) -> str:
    """Key of the float scores (*shape) of mask row ``row`` of prunable weight ``name``."""
    return f"{prefix}{name}{_STATE}scores.{row}"


def is_mask_state_key(key: str) -> bool:
    """Whether ``key`` holds masks or scores (not a weight of the model)."""
    return _STATE in key


def plain_key(key: str) -> str:
    """The key a weight has in the same model without masks (θ's key -> ``<name>.weight``; others unchanged)."""
    return key.replace(f"{_PARAMETRIZED}original", ".weight")


def pack_sparse(state_dict: Mapping[str, torch.Tensor], masks: ModelMasks, rows: list[int], prefix: str) -> dict:
    """Compact form of a masked model's ``state_dict`` keeping mask ``rows`` only.

    ``prefix`` is the encoder's key prefix in ``state_dict`` (e.g. ``model.encoder.``). Returns ``{"dense": {key:
    tensor}, "sparse": {name: {"shape", "masks": uint8 (len(rows), ceil(numel/8)), "values": float (kept,)}}}``
    with the values of θ at the union of the kept rows; score parameters are dropped.
    """
    sparse, dropped = {}, set()
    for name in masks.names:
        original, mask_key = original_key(prefix, name), masks_key(prefix, name)
        chosen = state_dict[mask_key][rows]
        union = chosen.any(0)
        sparse[name] = {
            "shape": list(state_dict[original].shape),
            "masks": torch.from_numpy(np.packbits(chosen.flatten(1).cpu().numpy(), axis=1)),
            "values": state_dict[original][union].clone(),
        }
        dropped.add(original)
    dense = {key: value for key, value in state_dict.items() if key not in dropped and not is_mask_state_key(key)}
    return {"dense": dense, "sparse": sparse}


def unpack_sparse(packed: Mapping, prefix: str) -> dict[str, torch.Tensor]:
    """The state dict (masked model with ``len(rows)`` mask rows, no scores) of a :func:`pack_sparse` result."""
    state = dict(packed["dense"])
    for name, entry in packed["sparse"].items():
        shape = entry["shape"]
        numel = math.prod(shape)
        # numpy unpacks the bits, on the host whatever device the export was loaded onto.
        bits = np.unpackbits(entry["masks"].cpu().numpy(), axis=1, count=numel).astype(bool)
        values = entry["values"]
        rows = torch.from_numpy(bits).view(-1, *shape).to(values.device)
        weight = torch.zeros(shape, dtype=values.dtype, device=values.device)
        weight[rows.any(0)] = values
        state[original_key(prefix, name)] = weight
        state[masks_key(prefix, name)] = rows
    return state


def is_sparse_export(checkpoint: Mapping) -> bool:
    return checkpoint.get("format") == SPARSE_FORMAT


def append_mask_row(encoder_state: Mapping[str, torch.Tensor], masks: ModelMasks, rows: list[int]) -> dict:
    """``encoder_state`` (an encoder ``state_dict``) with one more mask row per prunable weight, the union of mask
    ``rows`` (all rows: the union of the pathways; one row: that language's pathway). With scores, the new row's
    scores are :func:`~asrprune.model.mask_scores.initial_scores` of its mask."""
    state = dict(encoder_state)
    for name in masks.names:
        key = masks_key("", name)
        new = state[key][rows].any(0, keepdim=True)
        state[key] = torch.cat([state[key], new])
        if masks.spec["scores"]:
            row = len(state[key]) - 1
            state[scores_key("", name, row)] = initial_scores(state[original_key("", name)], new[0])
    return state
