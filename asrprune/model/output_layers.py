"""CTC output layers: phone embeddings E (V, D) whose inner products with encoder frames give the logits.

Every output layer computes ``logits[b, t, v] = <h[b, t], E[v]>`` with no per-phone bias, so layers differ only in
how E is made. ``flat`` learns one free vector per phone (the baseline); phonologically derived layers (JoinAP)
register here under their own names and are chosen in the YAML config (``output_layer.type``).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn


class PhoneEmbeddingOutput(nn.Module):
    """Base class: subclasses implement :meth:`embeddings`."""

    def embeddings(self) -> torch.Tensor:
        """The phone embedding matrix E, float (V, D)."""
        raise NotImplementedError

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) from encoder output ``hidden`` (B, T, D)."""
        return hidden @ self.embeddings().t()


class FlatPhoneEmbedding(PhoneEmbeddingOutput):
    """A free, learned D-dimensional vector per token (the flat-phone baseline)."""

    def __init__(self, tokens: Sequence[str], dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(len(tokens), dim))
        nn.init.normal_(self.weight, std=dim**-0.5)

    def embeddings(self) -> torch.Tensor:
        return self.weight


OUTPUT_LAYERS: dict[str, Callable[..., PhoneEmbeddingOutput]] = {"flat": FlatPhoneEmbedding}


def build_output_layer(config: dict, tokens: Sequence[str], dim: int) -> PhoneEmbeddingOutput:
    """Build the output layer named by ``config['type']`` over ``tokens`` for encoder width ``dim``."""
    options = dict(config)
    kind = options.pop("type", "flat")
    if kind not in OUTPUT_LAYERS:
        raise ValueError(f"output_layer.type {kind!r} is unknown; choose one of {sorted(OUTPUT_LAYERS)}")
    return OUTPUT_LAYERS[kind](tokens, dim, **options)
