"""The parametrization θ -> θ ⊙ m_k that masks one prunable weight, and its gradient rule.

A prunable weight θ (:data:`asrprune.model.conformer_layout.PRUNABLE_WEIGHTS`) is replaced, through
:mod:`torch.nn.utils.parametrize`, by θ ⊙ m_k, where m_k is the bool mask of the batch's language k (or the only
mask when masks are shared). The masks are a bool buffer ``masks`` of shape (K, *θ.shape) inside each
parametrization, so ``state_dict()`` (Lightning checkpoints, resume) carries them; θ itself keeps its values where it
is masked, so a re-evaluated mask can bring a weight back with the value it had (PARP-style regrowth). Where these
live in a state dict is derived in :mod:`asrprune.model.mask_storage` only.

Which row k a forward pass uses is set for the duration of that pass only
(:meth:`asrprune.model.mask_registry.ModelMasks.selected`, entered by ``ConformerCTC.forward``); reading a masked
weight outside a forward pass is an error, not a silent use of whichever row was used last.

Gradient rule (what "a batch of language l updates only the weights in m_l" means for the gradient; the optimizer
side is :mod:`asrprune.model.masked_optimizer`):
- the gradient of θ is the gradient of θ ⊙ m_l, i.e. zero outside m_l (:class:`_MaskedWeight`);
- with ``dormant_trainable`` (the adaptive methods), weights in *no* language's mask ("dormant": unused by every
  pathway) receive the straight-through gradient of the masked weight as PARP does, so magnitude re-pruning can let
  them grow back; weights in another language's pathway are still never touched.

Optional per-language ``scores`` (one float Parameter per mask row) receive the straight-through gradient
∂L/∂(θ⊙m) ⊙ θ (movement pruning); pruning criteria read or train them (``asrprune.pruning.masking.criteria``).
The main optimizer skips them because the criteria clear their gradient before it steps.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class MaskState:
    """What all parametrizations of one model share: K = ``num_masks`` rows, whether they are ``per_language``
    and whether dormant weights are trainable; ``current``: the row of the forward pass now running (None between
    passes); ``seen``: the rows used by gradient-recording passes since the last optimizer step (several with
    gradient accumulation), which :func:`asrprune.model.masked_optimizer.masked_optimizer_step` reads and clears.
    """

    num_masks: int
    per_language: bool
    dormant_trainable: bool
    current: int | None = None
    seen: set = field(default_factory=set)

    def seen_rows(self, device: torch.device) -> torch.Tensor:
        """Bool (num_masks,) on ``device``: the rows used since the last step."""
        rows = torch.zeros(self.num_masks, dtype=torch.bool)
        rows[sorted(self.seen)] = True
        return rows.to(device, non_blocking=True)


class _MaskedWeight(torch.autograd.Function):
    """θ ⊙ m forward; backward gives θ the gradient only where ``grad_mask`` is set and the scores ∂L/∂(θ⊙m) ⊙ θ.

    Hand-written because no library offers per-task masks with a straight-through gradient to dormant weights and
    to mask scores (torch.nn.utils.prune and torch.ao.pruning keep one mask and multiply the gradient by it).
    """

    @staticmethod
    def forward(ctx, weight, mask, grad_mask, scores):
        ctx.save_for_backward(weight, grad_mask)
        return weight * mask

    @staticmethod
    def backward(ctx, grad):
        weight, grad_mask = ctx.saved_tensors
        grad_scores = grad * weight if ctx.needs_input_grad[3] else None
        return grad * grad_mask, None, None, grad_scores


class PathwayMask(nn.Module):
    """Parametrization θ -> θ ⊙ masks[state.current] of one weight.

    Buffers: ``masks`` bool (K, *shape). Parameters: ``scores`` (K float tensors of ``shape``) when asked for.
    """

    def __init__(self, shape: torch.Size, state: MaskState, scores: bool):
        super().__init__()
        self.state = state
        self.register_buffer("masks", torch.ones(state.num_masks, *shape, dtype=torch.bool))
        self.scores = (
            nn.ParameterList(nn.Parameter(torch.zeros(shape)) for _ in range(state.num_masks)) if scores else None
        )

    def trainable(self, rows: torch.Tensor) -> torch.Tensor:
        """Bool (*shape): positions an optimizer step after batches of the mask rows set in ``rows`` (bool (K,), on
        the masks' device, so no host synchronisation) may change."""
        selected = rows.view(-1, *(1,) * (self.masks.dim() - 1))
        return self._with_dormant((self.masks & selected).any(0))

    def _with_dormant(self, allowed: torch.Tensor) -> torch.Tensor:
        """``allowed`` (bool (*shape)) plus the weights in no mask row when those are trainable."""
        return allowed | ~self.masks.any(0) if self.state.dormant_trainable else allowed

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        row = self.state.current
        if row is None:
            raise RuntimeError("a masked weight was read outside a forward pass: no mask row is selected "
                               "(ModelMasks.selected scopes a row to one pass)")
        mask = self.masks[row]
        needs_function = torch.is_grad_enabled() and (self.scores is not None or self.state.dormant_trainable)
        if not needs_function:
            return weight * mask
        grad_mask = self._with_dormant(mask)
        scores = self.scores[row] if self.scores is not None else None
        return _MaskedWeight.apply(weight, mask, grad_mask, scores)
