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
- with ``adjust`` (PARP per pathway; excludes ``dormant_trainable``), every weight that language l's mask excludes
  keeps training from l's batches, but into l's own *adjusted value* ``adjusted[l]`` (a float Parameter (K, *shape),
  zero where m_l keeps the weight), never into the shared θ. The forward pass is still θ ⊙ m_l (exactly sparse, so
  training and evaluation see the same network); the backward gives adjusted[l] the straight-through gradient
  ∂L/∂(θ⊙m_l) at the excluded positions, which is the gradient PARP's zeroed-but-trainable weight receives. The
  adjusted values are stepped by the model's own optimizer (same AdamW, LR schedule, weight decay and gradient
  clipping as θ, as in PARP); :mod:`asrprune.model.masked_optimizer` keeps every row but the batch's language, and
  every position that row keeps, where it was. At re-evaluation l ranks |θ| (kept) against |adjusted[l]|
  (excluded) by magnitude (:meth:`asrprune.model.mask_registry.ModelMasks.magnitude`).

  Why a per-language value and not a straight-through gradient into the shared θ: a weight that A's mask excludes
  may be a kept weight of B. Training θ itself from A's batches would move B's pathway with a gradient computed in
  a network where that weight is absent (interference), and since every language would then train every weight,
  |θ| would again give every language the same mask. With the adjusted values, B's kept weight is changed only by
  the languages that keep it (as in static pathways), while A's demand for it grows in adjusted[A] only; if A
  regrows it, A joins B's shared value (the adjusted value is dropped). A regrown weight that no pathway used
  before takes the adjusted value (the mean over the languages regrowing it at once), as a PARP weight comes back
  with its adjusted value; a pruned weight's adjusted value restarts at zero (PARP zeroes pruned weights). See
  :meth:`asrprune.model.mask_registry.ModelMasks.apply_adjusted`. With one shared mask (K = 1, monolingual
  adaptive masking) this is exactly PARP: excluded weights train from zero and come back with their value.

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
    whether dormant weights are trainable and whether excluded weights train per-language adjusted values
    (``adjust``); ``current``: the row of the forward pass now running (None between
    passes); ``seen``: the rows used by gradient-recording passes since the last optimizer step (several with
    gradient accumulation), which :func:`asrprune.model.masked_optimizer.masked_optimizer_step` reads and clears.
    """

    num_masks: int
    per_language: bool
    dormant_trainable: bool
    current: int | None = None
    adjust: bool = False
    seen: set = field(default_factory=set)

    def seen_rows(self, device: torch.device) -> torch.Tensor:
        """Bool (num_masks,) on ``device``: the rows used since the last step."""
        rows = torch.zeros(self.num_masks, dtype=torch.bool)
        rows[sorted(self.seen)] = True
        return rows.to(device, non_blocking=True)


class _MaskedWeight(torch.autograd.Function):
    """θ ⊙ m forward; backward gives θ the gradient only where ``grad_mask`` is set, the scores ∂L/∂(θ⊙m) ⊙ θ and
    the adjusted values (``adjust``) ∂L/∂(θ⊙m) outside m.

    Hand-written because no library offers per-task masks with a straight-through gradient to dormant weights and
    to mask scores (torch.nn.utils.prune and torch.ao.pruning keep one mask and multiply the gradient by it).
    """

    @staticmethod
    def forward(ctx, weight, mask, grad_mask, scores, adjusted):
        ctx.save_for_backward(weight, mask, grad_mask)
        return weight * mask

    @staticmethod
    def backward(ctx, grad):
        weight, mask, grad_mask = ctx.saved_tensors
        grad_scores = grad * weight if ctx.needs_input_grad[3] else None
        grad_adjusted = grad * ~mask if ctx.needs_input_grad[4] else None
        return grad * grad_mask, None, None, grad_scores, grad_adjusted


class PathwayMask(nn.Module):
    """Parametrization θ -> θ ⊙ masks[state.current] of one weight.

    Buffers: ``masks`` bool (K, *shape). Parameters: ``scores`` (K float tensors of ``shape``) when asked for;
    ``adjusted`` (float (K, *shape), one Parameter so that every forward pass uses it and DDP needs no search for
    unused parameters) with ``state.adjust``.
    """

    def __init__(self, shape: torch.Size, state: MaskState, scores: bool):
        super().__init__()
        self.state = state
        self.register_buffer("masks", torch.ones(state.num_masks, *shape, dtype=torch.bool))
        self.scores = (
            nn.ParameterList(nn.Parameter(torch.zeros(shape)) for _ in range(state.num_masks)) if scores else None
        )
        self.adjusted = nn.Parameter(torch.zeros(state.num_masks, *shape)) if state.adjust else None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Adjusted values are training state only: a state dict without them (a compact export, which drops all
        mask state but the masks) loads as zeros, and one with another number of rows (a language added by
        ``asrprune add-language``) is cut or padded with zeros."""
        key = prefix + "adjusted"
        if self.adjusted is not None:
            given = state_dict.get(key)
            if given is None:
                state_dict[key] = torch.zeros_like(self.adjusted)
            elif given.shape[0] != self.adjusted.shape[0]:
                fitted = torch.zeros_like(self.adjusted)
                rows = min(given.shape[0], fitted.shape[0])
                fitted[:rows] = given[:rows]
                state_dict[key] = fitted
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def adjusted_trainable(self, rows: torch.Tensor) -> torch.Tensor:
        """Bool (K, *shape): adjusted values a step after batches of ``rows`` (bool (K,)) may change: those rows,
        where their masks exclude the weight."""
        return rows.view(-1, *(1,) * (self.masks.dim() - 1)) & ~self.masks

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
        needs_function = torch.is_grad_enabled() and (
            self.scores is not None or self.state.dormant_trainable or self.adjusted is not None
        )
        if not needs_function:
            return weight * mask
        grad_mask = self._with_dormant(mask)
        scores = self.scores[row] if self.scores is not None else None
        adjusted = self.adjusted[row] if self.adjusted is not None else None
        return _MaskedWeight.apply(weight, mask, grad_mask, scores, adjusted)
