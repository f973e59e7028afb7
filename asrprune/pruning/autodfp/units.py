"""What AutoDFP's budget charges each structured layer: multiply-accumulates and parameters as functions of widths.

The layers themselves (which units, which tensors they span) are ESPnet-specific and named in
:mod:`asrprune.model.conformer_layout`; this module only counts.
"""
from __future__ import annotations

from asrprune.model.conformer_layout import Dims, Layer


def layer_costs(layers: list[Layer], widths: list[int], dims: Dims, frames: int) -> tuple[list[float], float]:
    """Multiply-accumulates (MACs) of one utterance of ``frames`` input frames (10 ms each), per layer, and the
    MACs that no unit removal changes (the model-width projections: embedding linear's output side excepted, the
    CTC output layer). LayerNorms, softmax and activations are not counted.

    Costs are charged to the layer whose width they scale with: Conv2d #2 (c1*c2 products) to subsampling.1 with
    the c1 factor taken from the current width of subsampling.0, which is why costs are computed jointly.
    Returns (per-layer MACs aligned with ``layers``, fixed MACs).
    """
    f1, f2 = dims.freq
    t1 = (frames - 1) // 2
    t2 = (t1 - 1) // 2
    named = dict(zip((layer.name for layer in layers), widths))
    costs = []
    for layer, width in zip(layers, widths):
        if layer.name == "subsampling.0":
            costs.append(t1 * f1 * width * 9)
        elif layer.name == "subsampling.1":
            costs.append(t2 * f2 * width * named["subsampling.0"] * 9 + t2 * width * f2 * dims.d)
        elif layer.kind == "ffn":
            costs.append(2 * t2 * dims.d * width)
        elif layer.kind == "heads":
            inner = width * dims.d_k
            # q, k, v, out projections; linear_pos over 2T-1 positions; scores (T x T content, T x 2T-1 position)
            # and the weighted sum of values.
            costs.append(4 * t2 * dims.d * inner + (2 * t2 - 1) * dims.d * inner
                         + t2 * (t2 + 2 * t2 - 1) * inner + t2 * t2 * inner)
        else:
            costs.append(t2 * (dims.d * 2 * width + width * dims.kernel + width * dims.d))
    return costs, float(t2 * dims.d * dims.vocab)


def layer_params(layers: list[Layer], widths: list[int], dims: Dims) -> list[float]:
    """Parameters per layer that scale with its width (same charging rule as :func:`layer_costs`). Everything else
    (LayerNorms, model-width biases, the output layer) is fixed: count it as the model's total minus these at the
    dense widths."""
    named = dict(zip((layer.name for layer in layers), widths))
    f2 = dims.freq[1]
    d = dims.d
    params = []
    for layer, width in zip(layers, widths):
        if layer.name == "subsampling.0":
            params.append(width * 10)
        elif layer.name == "subsampling.1":
            params.append(width * (named["subsampling.0"] * 9 + 1) + width * f2 * d)
        elif layer.kind == "ffn":
            params.append(width * (2 * d + 1))
        elif layer.kind == "heads":
            inner = width * dims.d_k
            # q/k/v weights and biases, linear_pos, linear_out columns, pos_bias_u/v.
            params.append(3 * inner * (d + 1) + 2 * inner * d + 2 * inner)
        else:
            # pointwise_conv1 (2C rows + biases), depthwise kernel + bias, BatchNorm affine, pointwise_conv2 columns.
            params.append(2 * width * (d + 1) + width * (dims.kernel + 1) + 2 * width + width * d)
    return params
