"""Greedy (best-path) CTC decoding: the most likely token per frame, repeats collapsed, blanks dropped."""
from __future__ import annotations

import torch


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best-path CTC decoding of a padded batch.

    Args:
        log_probs: ``(B, T, V)`` CTC log-probabilities (or any scores whose argmax is the frame's best token).
        lengths: ``(B,)`` number of valid frames of each utterance; frames at or after it are padding and ignored.
        blank: index of the CTC blank token.

    Returns:
        ``B`` lists of token indices: per utterance, the argmax token of every valid frame with runs of the same
        token merged into one and blanks removed (``a a - a b b`` -> ``a a b``).
    """
    if log_probs.ndim != 3:
        raise ValueError(f"log_probs must have shape (B, T, V), got {tuple(log_probs.shape)}")
    batch, frames, _ = log_probs.shape
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    best = log_probs.argmax(dim=-1)  # (B, T)
    lengths = lengths.to(best.device)
    valid = torch.arange(frames, device=best.device).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    starts_run = torch.ones_like(valid)
    starts_run[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = (valid & starts_run & (best != blank)).cpu()
    best = best.cpu()
    return [best[b][keep[b]].tolist() for b in range(batch)]
