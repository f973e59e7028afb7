"""Structured pruning units of an ESPnet ConformerEncoder, their dependent parameters, and per-layer costs.

A *layer* here is one group of interchangeable units whose removal keeps the model a smaller dense model:

==============  =========================================  ==================================================
layer           unit                                       removed together (``in`` rows / ``out`` columns)
==============  =========================================  ==================================================
subsampling.0   output channel of Conv2d #1 (ReLU)         conv.0 weight/bias rows; conv.2 weight in-channel
subsampling.1   output channel of Conv2d #2 (ReLU)         conv.2 weight/bias rows; out.0 columns c*F..c*F+F-1
blocks.i.ffn_*  hidden unit of a feed-forward (Swish)      w_1 row and bias; w_2 column
blocks.i.heads  attention head (d_k dims)                  q/k/v/pos rows h*d_k.., pos_bias_u/v[h]; out columns
blocks.i.conv   conv-module channel (GLU pair)             pointwise_conv1 rows c and C+c, depthwise and
                                                           BatchNorm channel c; pointwise_conv2 column c
==============  =========================================  ==================================================

The model width (output_size) is coupled through every residual and LayerNorm and is not pruned.

Torch-Pruning (DepGraph) is not used for this bookkeeping: checked on ESPnet 202511 with torch-pruning 1.6.1, its
tracer treats ``F.glu`` as an element-wise op (pruning pointwise_conv1 row c does not remove the gate row C+c, so
the shapes break), prunes ``pos_bias_u/v`` (h, d_k) along d_k instead of the head row, follows the attention
scores through the rel-shift reshapes onto the time axis, and cannot update the module's head count ``h``.
The table above is short enough to state by hand and exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

KINDS = ("subsampling", "ffn", "heads", "conv")
BLOCK_LAYERS = (("ffn_macaron", "ffn", "feed_forward_macaron"), ("heads", "heads", "self_attn"),
                ("conv", "conv", "conv_module"), ("ffn", "ffn", "feed_forward"))


@dataclass(frozen=True)
class Slot:
    """One tensor of a layer's group: ``key`` in the encoder state dict, the ``dim`` that indexes units, and how a
    unit maps to indices along it: ``block`` consecutive indices per unit, or ``glu`` (unit c -> c and C+c)."""

    key: str
    dim: int
    block: int = 1
    glu: bool = False

    def indices(self, units: torch.Tensor, width: int) -> torch.Tensor:
        """Tensor indices (long) of ``units`` (long) in a layer that currently has ``width`` units."""
        if self.glu:
            return torch.cat([units, units + width])
        return (units[:, None] * self.block + torch.arange(self.block)).reshape(-1)


@dataclass(frozen=True)
class Layer:
    """A prunable layer: ``name`` (also the key in the widths), ``kind`` (:data:`KINDS`), ``block`` index (None
    for the subsampling front end), dense ``width`` in units, and the ``inputs`` slots (rows that compute each unit)
    and ``outputs`` slots (columns that read it; the fold of :mod:`.reconstruction` acts on these)."""

    name: str
    kind: str
    block: int | None
    width: int
    inputs: tuple[Slot, ...]
    outputs: tuple[Slot, ...]


@dataclass(frozen=True)
class Dims:
    """Fixed sizes of a conformer: model width ``d``, head dim ``d_k``, conv ``kernel``, input ``mel`` bins and
    output ``vocab`` size."""

    d: int
    d_k: int
    kernel: int
    mel: int
    vocab: int

    @property
    def freq(self) -> tuple[int, int]:
        """Frequency bins after Conv2d #1 and #2 (kernel 3, stride 2)."""
        f1 = (self.mel - 1) // 2
        return f1, (f1 - 1) // 2


def conformer_dims(model) -> Dims:
    """:class:`Dims` of a :class:`asrprune.model.conformer_ctc.ConformerCTC`."""
    encoder = model.encoder
    layer = encoder.encoders[0]
    return Dims(layer.size, layer.self_attn.d_k, layer.conv_module.depthwise_conv.kernel_size[0],
                model.cmvn.mean.numel(), len(model.tokens))


def _check_supported(model) -> None:
    encoder = model.encoder
    if type(encoder.embed).__name__ != "Conv2dSubsampling":
        raise ValueError(f"autodfp: input_layer must be conv2d (found {type(encoder.embed).__name__})")
    for i, layer in enumerate(encoder.encoders):
        if layer.feed_forward_macaron is None or layer.conv_module is None:
            raise ValueError(f"autodfp: block {i} lacks the macaron feed-forward or the conv module")
        if not hasattr(layer.self_attn, "linear_pos"):
            raise ValueError(f"autodfp: block {i} attention is not rel_selfattn")


def encoder_layers(model) -> list[Layer]:
    """The prunable layers of ``model`` (a ConformerCTC) in forward order, with their dense widths."""
    _check_supported(model)
    encoder, dims = model.encoder, conformer_dims(model)
    conv = encoder.embed.conv
    freq2 = dims.freq[1]
    layers = [
        Layer("subsampling.0", "subsampling", None, conv[0].out_channels,
              (Slot("embed.conv.0.weight", 0), Slot("embed.conv.0.bias", 0)), (Slot("embed.conv.2.weight", 1),)),
        Layer("subsampling.1", "subsampling", None, conv[2].out_channels,
              (Slot("embed.conv.2.weight", 0), Slot("embed.conv.2.bias", 0)),
              (Slot("embed.out.0.weight", 1, block=freq2),)),
    ]
    for i, block in enumerate(encoder.encoders):
        p = f"encoders.{i}."
        for short, kind, module in BLOCK_LAYERS:
            m = p + module
            if kind == "ffn":
                ff = getattr(block, module)
                layers.append(Layer(f"blocks.{i}.{short}", kind, i, ff.w_1.out_features,
                                    (Slot(f"{m}.w_1.weight", 0), Slot(f"{m}.w_1.bias", 0)),
                                    (Slot(f"{m}.w_2.weight", 1),)))
            elif kind == "heads":
                k = dims.d_k
                rows = tuple(Slot(f"{m}.linear_{n}.{w}", 0, block=k) for n in "qkv" for w in ("weight", "bias"))
                layers.append(Layer(f"blocks.{i}.{short}", kind, i, block.self_attn.h,
                                    rows + (Slot(f"{m}.linear_pos.weight", 0, block=k), Slot(f"{m}.pos_bias_u", 0),
                                            Slot(f"{m}.pos_bias_v", 0)),
                                    (Slot(f"{m}.linear_out.weight", 1, block=k),)))
            else:
                per_channel = tuple(Slot(f"{m}.{n}", 0) for n in (
                    "depthwise_conv.weight", "depthwise_conv.bias", "norm.weight", "norm.bias", "norm.running_mean",
                    "norm.running_var"))
                layers.append(Layer(f"blocks.{i}.{short}", kind, i, block.conv_module.depthwise_conv.out_channels,
                                    (Slot(f"{m}.pointwise_conv1.weight", 0, glu=True),
                                     Slot(f"{m}.pointwise_conv1.bias", 0, glu=True)) + per_channel,
                                    (Slot(f"{m}.pointwise_conv2.weight", 1),)))
    return layers


def widths_dict(layers: list[Layer], widths: list[int]) -> dict:
    """The ``encoder_widths`` model argument (see ``asrprune.model.conformer_ctc.resize_encoder``) of ``widths``,
    one int per layer of ``layers``."""
    named = dict(zip((layer.name for layer in layers), widths))
    blocks = sorted({layer.block for layer in layers if layer.block is not None})
    return {
        "subsampling": [named["subsampling.0"], named["subsampling.1"]],
        "blocks": [{short: named[f"blocks.{i}.{short}"] for short, _, _ in BLOCK_LAYERS} for i in blocks],
    }


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
