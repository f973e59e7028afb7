"""Fold a pruned unit's outgoing weights into its most similar kept unit (data-free reconstruction).

For a pruned unit j and the kept unit k with the highest signature cosine (:mod:`.similarity`), the columns that read
j are added to those that read k, scaled by ``strength * s_jk`` (Neuron Merging, Kim et al. 2020, with s_jk =
m_j / m_k) and then j is removed. If j's activation equals s_jk times k's on every input, this is exact at
strength 1. Where it is exact, per unit type:

- subsampling channels (Conv2d + ReLU): exact whenever j's filter and bias are a positive multiple of k's, because
  ReLU is positively homogeneous (relu(s z) = s relu(z), s > 0).
- feed-forward units (Linear + Swish): exact only for identical rows (s = 1). Swish is not positively homogeneous
  (swish(s z) != s swish(z) for s != 1), so proportional units are approximated by the scale s.
- conv-module channels (GLU -> depthwise -> BatchNorm -> Swish): GLU = value * sigmoid(gate) is linear in the value
  row but not in the gate row, so it needs equal gates; depthwise conv and BatchNorm at inference (running
  statistics) are per-channel affine maps and fold exactly into a scaled kernel (the signature uses the folded
  kernel); the bias offsets must scale with the same factor; Swish again needs s = 1. So the fold is exact only for
  identical channels and approximate otherwise.
- attention heads: a head's output is A_h (X V_h^T + b_h) O_h^T. With j's attention map taken equal to k's
  (nearest score form), j's values are mapped onto k's by least squares on the weights, [V_j b_j] ~ M [V_k b_k]
  (M is d_k x d_k), and O_k += strength * O_j M. Exact if the heads have equal query/key/positional weights
  (equal attention maps) and j's value rows lie in the span of k's (e.g. identical heads); approximate otherwise.

Units whose best cosine is below ``min_cosine`` are pruned without compensation (Neuron Merging's threshold).
"""
from __future__ import annotations

import torch

from asrprune.pruning.autodfp.similarity import cosine_matrix, signature
from asrprune.model.conformer_layout import Layer


def nearest_kept(cos: torch.Tensor, kept: torch.Tensor, pruned: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each pruned unit the most similar kept unit (long, len(pruned)) and that cosine (float)."""
    best, where = cos[pruned][:, kept].max(dim=1)
    return kept[where], best


def fold(
    state: dict, layer: Layer, width: int, kept: torch.Tensor, pruned: torch.Tensor, strength: float,
    min_cosine: float,
) -> int:
    """Add each pruned unit's outgoing columns into its nearest kept unit's, in place in ``state`` (the encoder
    state dict), before the pruned units are removed. ``kept``/``pruned`` are unit indices (long) of a layer that
    has ``width`` units now. Returns how many pruned units were folded (the rest had cosine < min_cosine)."""
    if strength <= 0 or len(pruned) == 0:
        return 0
    sig, magnitude = signature(state, layer, width)
    target, best = nearest_kept(cosine_matrix(sig), kept, pruned)
    use = best >= min_cosine
    source, target = pruned[use], target[use]
    if len(source) == 0:
        return 0
    if layer.kind == "heads":
        _fold_heads(state, layer, width, source, target, strength)
        return len(source)
    coefficient = strength * magnitude[source] / magnitude[target].clamp_min(1e-12)
    for slot in layer.outputs:
        moved = state[slot.key].movedim(slot.dim, 0)  # a view: writes go to the state tensor
        src, dst = slot.indices(source, width), slot.indices(target, width)
        scale = coefficient.repeat_interleave(len(src) // len(source)).to(moved.dtype)
        update = moved[src] * scale.view(-1, *([1] * (moved.dim() - 1)))
        moved.index_add_(0, dst, update)
    return len(source)


def _fold_heads(state: dict, layer: Layer, width: int, source: torch.Tensor, target: torch.Tensor,
                strength: float) -> None:
    """Heads: O_k += strength * O_j M_jk with [V_j b_j] ~ M_jk [V_k b_k] (least squares, M is d_k x d_k)."""
    v_weight, v_bias = (state[slot.key].float() for slot in layer.inputs[4:6])
    out_slot = layer.outputs[0]
    d_k = out_slot.block
    out = state[out_slot.key]  # (d, H * d_k)
    values = torch.cat([v_weight, v_bias[:, None]], dim=1).reshape(width, d_k, -1)  # (H, d_k, d + 1)
    for j, k in zip(source.tolist(), target.tolist()):
        m = values[j] @ torch.linalg.pinv(values[k])  # (d_k, d_k)
        cols_j, cols_k = slice(j * d_k, (j + 1) * d_k), slice(k * d_k, (k + 1) * d_k)
        out[:, cols_k] += strength * (out[:, cols_j].float() @ m).to(out.dtype)
