"""The optimizer side of the pathway update rule: a step changes only the weights of the languages it trained.

After the optimizer's step, θ and its same-shaped optimizer state (AdamW moments) are restored outside the positions
trainable for the mask rows used since the last step (:meth:`~asrprune.model.mask_parametrization.PathwayMask.
trainable`), so momentum and weight decay cannot move weights that belong only to other languages' pathways (or
pruned weights of a shared mask). With ``adjust``, the adjusted values (one (K, *shape) Parameter per weight) and their
optimizer state are restored the same way outside the rows used, and where those rows keep the weight, so AdamW's
momentum and weight decay move only the used languages' adjusted values of the weights they exclude. Under DDP every
rank lets the same rows change (one all_reduce).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch

from asrprune.model.mask_parametrization import MaskState
from asrprune.model.mask_registry import ModelMasks


def _rows_seen_by_all_ranks(state: MaskState, device: torch.device) -> torch.Tensor:
    """Bool (K,) on ``device``: mask rows used since the last step, on any process. Under DDP the gradients of all
    ranks' languages are averaged, so every rank must let the same pathways change to keep the replicas identical
    (per-language masks make the ranks draw one language per step, so the union is that row). One all_reduce of K
    bytes on the device."""
    rows = state.seen_rows(device)
    if state.per_language and torch.distributed.is_available() and torch.distributed.is_initialized():
        rows = rows.to(torch.uint8)
        torch.distributed.all_reduce(rows, op=torch.distributed.ReduceOp.MAX)
        rows = rows.bool()
    return rows


@contextlib.contextmanager
def _snapshot(masks: ModelMasks, optimizer: torch.optim.Optimizer) -> Iterator[Callable[[], None]]:
    """Copy every prunable θ and its same-shaped optimizer state; yield a function restoring the frozen positions."""
    saved = []
    for name in masks.names:
        parametrization = masks.parametrization(name)
        tensors = [(masks.weight(name), parametrization.trainable)]
        if parametrization.adjusted is not None:
            tensors.append((parametrization.adjusted, parametrization.adjusted_trainable))
        for weight, trainable in tensors:
            state = {key: value.clone() for key, value in optimizer.state.get(weight, {}).items()
                     if torch.is_tensor(value) and value.shape == weight.shape}
            saved.append((trainable, weight, weight.detach().clone(), state))

    def restore() -> None:
        rows = _rows_seen_by_all_ranks(masks.state, saved[0][1].device)
        with torch.no_grad():
            for trainable_for, weight, before, state in saved:
                trainable = trainable_for(rows)
                weight.copy_(torch.where(trainable, weight, before))  # where(): faster than boolean indexing
                for key, value in state.items():
                    current = optimizer.state[weight][key]
                    current.copy_(torch.where(trainable, current, value))

    yield restore


def masked_optimizer_step(masks: ModelMasks, optimizer: torch.optim.Optimizer, step: Callable[[], None]) -> None:
    """Run ``step()`` (an optimizer step that may run the forward/backward closure itself) so that only weights
    trainable for the languages whose batches were seen since the last step change.

    Nothing is copied when every position is trainable (a shared mask with dormant weights trainable).
    """
    everything_trainable = not masks.state.per_language and masks.state.dormant_trainable
    if everything_trainable:
        step()
    else:
        with _snapshot(masks, optimizer) as restore:
            step()
            restore()
    masks.state.seen.clear()
