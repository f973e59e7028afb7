"""Scores that decide masks: exact top-k selection and the scores whose top-k is a given mask.

A mask row keeps exactly ``round(numel * (1 - sparsity))`` weights of one prunable tensor; pruning criteria
(:mod:`asrprune.pruning.masking.criteria`) rank the weights by a score of the tensor's shape and keep the top k.
"""
from __future__ import annotations

import torch


def topk_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Bool mask of ``scores``' shape keeping exactly round(numel * (1 - sparsity)) highest scores (ties: by index)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    keep = round(scores.numel() * (1.0 - sparsity))
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    mask[torch.topk(scores.flatten(), keep, sorted=False).indices] = True
    return mask.view_as(scores)


def initial_scores(weight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Float scores of ``weight``'s shape whose top-|mask| set is ``mask`` (bool, same shape): mask + |θ|/max|θ|
    (kept weights score in [1, 2], pruned ones in [0, 1])."""
    magnitude = weight.detach().abs()
    return mask.float() + magnitude / magnitude.max().clamp_min(1e-12)


def swap_limited_topk(scores: torch.Tensor, old: torch.Tensor, keep: int, margin: float = 0.0,
                      max_swap_fraction: float = 1.0) -> torch.Tensor:
    """Bool mask of ``scores``' shape keeping exactly ``keep`` weights, re-selected from the mask ``old`` with churn
    control (PARP-style re-evaluation where a candidate must clearly beat a kept weight):

    - ``margin``: a weight outside ``old`` displaces a kept one only if its score exceeds the kept one's by
      ``margin`` × |kept score| (kept scores are raised by that much before the top-k; sign-safe for learned scores);
    - ``max_swap_fraction``: at most ``floor(max_swap_fraction * keep)`` swaps, a swap being a weight regrown beyond
      those a falling sparsity forces (``max(0, keep - |old|)``); past the cap the best-scoring candidates are taken
      and the rest of the budget goes to the best-scoring kept weights. 1.0: no cap.

    With ``margin == 0`` and no cap this is :func:`topk_mask` at the same number kept. Reads two counts on the host
    when the cap is on.
    """
    flat, before = scores.detach().flatten().float(), old.flatten()
    if margin:
        flat = torch.where(before, flat + margin * flat.abs(), flat)
    mask = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    mask[torch.topk(flat, keep, sorted=False).indices] = True
    if max_swap_fraction < 1.0:
        kept_before = int(before.sum())
        limit = max(0, keep - kept_before) + int(max_swap_fraction * keep + 1e-9)
        if int((mask & ~before).sum()) > limit:
            low = torch.finfo(flat.dtype).min
            mask.zero_()
            mask[torch.topk(torch.where(before, low, flat), limit, sorted=False).indices] = True
            mask[torch.topk(torch.where(before, flat, low), keep - limit, sorted=False).indices] = True
    return mask.view_as(scores)
