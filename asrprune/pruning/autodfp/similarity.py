"""Data-free channel similarity and importance, computed on the weights only.

Each unit of a layer (:mod:`asrprune.model.conformer_layout`) gets a *signature*: the weights that compute its
activation, with biases.
Two units with proportional signatures have proportional pre-activations on every input. Similarity is the cosine
of signatures; a unit's *magnitude* gives Neuron Merging's scale s_jk = m_j / m_k. Importance (which units to keep)
is the classic L1 norm of the unit's input filter (Li et al., 2017), the same for every method so that the methods
differ only in how much they keep per layer and how they reconstruct.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import DBSCAN

from asrprune.model.conformer_layout import Layer

# BatchNorm epsilon of ESPnet's conv module (torch default).
BN_EPS = 1e-5


def _rows(state: dict, layer: Layer, width: int) -> list[torch.Tensor]:
    """The input slots of ``layer`` as (width, -1) float tensors, one row per unit."""
    out = []
    for slot in layer.inputs:
        t = state[slot.key].float()
        t = t.movedim(slot.dim, 0)
        if slot.glu:
            out.extend([t[:width].reshape(width, -1), t[width:].reshape(width, -1)])
        else:
            out.append(t.reshape(width, -1))
    return out


def importance(state: dict, layer: Layer, width: int) -> torch.Tensor:
    """L1 norm (width,) of each unit's input weights (biases, positional terms and BatchNorm statistics excluded)."""
    rows = _rows(state, layer, width)
    if layer.kind == "heads":  # q, k, v weights
        weights = [rows[0], rows[2], rows[4]]
    elif layer.kind == "conv":  # GLU value and gate rows of pointwise_conv1
        weights = rows[:2]
    else:
        weights = rows[:1]
    return sum(w.abs().sum(dim=1) for w in weights)


def signature(state: dict, layer: Layer, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Signature (width, D) and magnitude (width,) of every unit.

    - subsampling, ffn: [filter, bias]; magnitude = its L2 norm.
    - conv channel c: [GLU value row + bias, gate row + bias, depthwise kernel and bias with BatchNorm folded in
      (kernel * gamma/sigma, (bias - mean) * gamma/sigma + beta)]; magnitude = ||value|| * ||folded kernel||, the
      factor by which a channel whose value and kernel are scaled copies of another's (same gate) scales its output
      before Swish.
    - heads: flattened bilinear score form W_q^h W_k^h^T (d x d) concatenated with the positional one
      W_q^h W_pos^h^T, which decide the head's attention map; magnitude is unused (heads fold through a matrix,
      see :mod:`.reconstruction`).
    """
    rows = _rows(state, layer, width)
    if layer.kind in ("subsampling", "ffn"):
        sig = torch.cat(rows[:2], dim=1)
        return sig, sig.norm(dim=1)
    if layer.kind == "conv":
        value = torch.cat([rows[0], rows[2]], dim=1)
        gate = torch.cat([rows[1], rows[3]], dim=1)
        dw_w, dw_b, gamma, beta, mean, var = rows[4:10]
        scale = gamma / torch.sqrt(var + BN_EPS)
        folded = torch.cat([dw_w * scale, (dw_b - mean) * scale + beta], dim=1)
        sig = torch.cat([value, gate, folded], dim=1)
        return sig, value.norm(dim=1) * folded[:, :-1].norm(dim=1)
    q, k, pos = rows[0], rows[2], rows[6]
    dim = state[layer.inputs[0].key].shape[1]
    q, k, pos = (t.reshape(width, -1, dim) for t in (q, k, pos))  # (H, d_k, d)
    content = torch.einsum("hkd,hke->hde", q, k).reshape(width, -1)
    position = torch.einsum("hkd,hke->hde", q, pos).reshape(width, -1)
    sig = torch.cat([content, position], dim=1)
    return sig, sig.norm(dim=1)


def cosine_matrix(sig: torch.Tensor) -> torch.Tensor:
    """Cosine similarity (N, N) between the rows of ``sig`` (N, D)."""
    unit = sig / sig.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return unit @ unit.T


def similarity_stats(sig: torch.Tensor, eps: float = 0.3) -> tuple[float, float]:
    """Two per-layer descriptors for the agent's state: mean nearest-neighbour cosine, and the fraction of units
    that DBSCAN (cosine distance, ``eps``, min_samples 2) puts in a cluster rather than marking as noise, the
    clustering AutoDFP feeds its agent."""
    cos = cosine_matrix(sig)
    if cos.shape[0] < 2:
        return 0.0, 0.0
    nearest = (cos - 2 * torch.eye(cos.shape[0])).max(dim=1).values
    distance = (1 - cos).clamp_min(0).double().numpy()
    labels = DBSCAN(eps=eps, min_samples=2, metric="precomputed").fit_predict(distance)
    return float(nearest.mean()), float(np.mean(labels >= 0))
