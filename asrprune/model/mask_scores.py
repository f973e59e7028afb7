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
