"""ESPnet's ConformerEncoder internals, named once: the prunable weights, the structured units, resizing.

Everything in asrprune that reaches inside the encoder by name goes through this module: the weight masks
(:mod:`asrprune.model.mask_registry`), AutoDFP's structured pruning (:mod:`asrprune.pruning.autodfp`), the
rebuilding of a structurally pruned encoder (:func:`resize_encoder`) and a narrower subsampling front end
(:func:`resize_subsampling`), both called by ``ConformerCTC``.

Prunable weights (:data:`PRUNABLE_WEIGHTS`, 73 % of the mini model's 2.6 M parameters), masked per language: in every
conformer block the two feed-forward modules (``feed_forward`` and ``feed_forward_macaron``: w_1, w_2), the
self-attention projections (linear_q/k/v/out) and the convolution module (pointwise_conv1, depthwise_conv,
pointwise_conv2). Not pruned: ``linear_pos`` (it projects the fixed sinusoidal relative-position table, never the
utterance, so a language has nothing of its own to select there; 4 % of the parameters), biases, LayerNorm/BatchNorm
parameters and ``pos_bias_u/v`` (tiny, and scale/shift every unit), the conv2d subsampling front-end (the first
layers see raw filterbanks and are the layers that pruning studies leave dense; its 2736->144 projection would
dominate a uniform per-tensor sparsity) and the output layer (per-token rows; JoinAP output layers compute it from
phonological vectors, so a language-specific mask there would decouple phones that JoinAP ties together).

Structured units (:func:`encoder_layers`): a *layer* is one group of interchangeable units whose removal keeps the
model a smaller dense model:

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

The model width (output_size) is coupled through every residual and LayerNorm and is not pruned. Slot keys are the
keys of a dense encoder's ``state_dict`` (a masked weight's θ is stored under another key:
:func:`asrprune.model.mask_storage.plain_key` maps it back).

Torch-Pruning (DepGraph) is not used for this bookkeeping: checked on ESPnet 202511 with torch-pruning 1.6.1, its
tracer treats ``F.glu`` as an element-wise op (pruning pointwise_conv1 row c does not remove the gate row C+c, so
the shapes break), prunes ``pos_bias_u/v`` (h, d_k) along d_k instead of the head row, follows the attention
scores through the rel-shift reshapes onto the time axis, and cannot update the module's head count ``h``.
The table above is short enough to state by hand and exact.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

BLOCKS = "encoders"  # the ModuleList of conformer blocks
FFN_MACARON, ATTENTION, CONV, FFN = "feed_forward_macaron", "self_attn", "conv_module", "feed_forward"

# Module paths (relative to a conformer block ``encoders.<i>``) whose ``weight`` is prunable.
PRUNABLE_WEIGHTS = (
    f"{FFN_MACARON}.w_1",
    f"{FFN_MACARON}.w_2",
    f"{ATTENTION}.linear_q",
    f"{ATTENTION}.linear_k",
    f"{ATTENTION}.linear_v",
    f"{ATTENTION}.linear_out",
    f"{CONV}.pointwise_conv1",
    f"{CONV}.depthwise_conv",
    f"{CONV}.pointwise_conv2",
    f"{FFN}.w_1",
    f"{FFN}.w_2",
)

KINDS = ("subsampling", "ffn", "heads", "conv")
# Per block, in forward order: (layer name suffix = key in the widths, kind, block submodule).
BLOCK_LAYERS = (("ffn_macaron", "ffn", FFN_MACARON), ("heads", "heads", ATTENTION), ("conv", "conv", CONV),
                ("ffn", "ffn", FFN))


def prunable_weights(encoder: nn.Module) -> list[str]:
    """Paths under ``encoder`` (e.g. ``encoders.0.feed_forward.w_1``) of the modules whose ``weight`` is prunable,
    block by block; modules the encoder lacks (no macaron feed-forward, no conv module) are skipped."""
    names = []
    for index, block in enumerate(getattr(encoder, BLOCKS)):
        for path in PRUNABLE_WEIGHTS:
            owner, _, leaf = path.partition(".")
            if getattr(block, owner, None) is not None and hasattr(getattr(block, owner), leaf):
                names.append(f"{BLOCKS}.{index}.{path}")
    return names


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
    and ``outputs`` slots (columns that read it)."""

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
    layer = getattr(model.encoder, BLOCKS)[0]
    return Dims(layer.size, getattr(layer, ATTENTION).d_k, getattr(layer, CONV).depthwise_conv.kernel_size[0],
                model.cmvn.mean.numel(), len(model.tokens))


def _check_supported(encoder: nn.Module) -> None:
    if type(encoder.embed).__name__ != "Conv2dSubsampling":
        raise ValueError(f"structured pruning: input_layer must be conv2d (found {type(encoder.embed).__name__})")
    for i, layer in enumerate(getattr(encoder, BLOCKS)):
        if getattr(layer, FFN_MACARON) is None or getattr(layer, CONV) is None:
            raise ValueError(f"structured pruning: block {i} lacks the macaron feed-forward or the conv module")
        if not hasattr(getattr(layer, ATTENTION), "linear_pos"):
            raise ValueError(f"structured pruning: block {i} attention is not rel_selfattn")


def _block_layer(block: nn.Module, i: int, short: str, kind: str, module: str, d_k: int) -> Layer:
    m = f"{BLOCKS}.{i}.{module}"
    if kind == "ffn":
        return Layer(f"blocks.{i}.{short}", kind, i, getattr(block, module).w_1.out_features,
                     (Slot(f"{m}.w_1.weight", 0), Slot(f"{m}.w_1.bias", 0)), (Slot(f"{m}.w_2.weight", 1),))
    if kind == "heads":
        rows = tuple(Slot(f"{m}.linear_{n}.{w}", 0, block=d_k) for n in "qkv" for w in ("weight", "bias"))
        return Layer(f"blocks.{i}.{short}", kind, i, getattr(block, module).h,
                     rows + (Slot(f"{m}.linear_pos.weight", 0, block=d_k), Slot(f"{m}.pos_bias_u", 0),
                             Slot(f"{m}.pos_bias_v", 0)),
                     (Slot(f"{m}.linear_out.weight", 1, block=d_k),))
    per_channel = tuple(Slot(f"{m}.{n}", 0) for n in (
        "depthwise_conv.weight", "depthwise_conv.bias", "norm.weight", "norm.bias", "norm.running_mean",
        "norm.running_var"))
    return Layer(f"blocks.{i}.{short}", kind, i, getattr(block, module).depthwise_conv.out_channels,
                 (Slot(f"{m}.pointwise_conv1.weight", 0, glu=True), Slot(f"{m}.pointwise_conv1.bias", 0, glu=True))
                 + per_channel,
                 (Slot(f"{m}.pointwise_conv2.weight", 1),))


def encoder_layers(model) -> list[Layer]:
    """The structured layers of ``model`` (a ConformerCTC) in forward order, with their current widths."""
    encoder = model.encoder
    _check_supported(encoder)
    dims = conformer_dims(model)
    conv = encoder.embed.conv
    layers = [
        Layer("subsampling.0", "subsampling", None, conv[0].out_channels,
              (Slot("embed.conv.0.weight", 0), Slot("embed.conv.0.bias", 0)), (Slot("embed.conv.2.weight", 1),)),
        Layer("subsampling.1", "subsampling", None, conv[2].out_channels,
              (Slot("embed.conv.2.weight", 0), Slot("embed.conv.2.bias", 0)),
              (Slot("embed.out.0.weight", 1, block=dims.freq[1]),)),
    ]
    for i, block in enumerate(getattr(encoder, BLOCKS)):
        layers += [_block_layer(block, i, short, kind, module, dims.d_k) for short, kind, module in BLOCK_LAYERS]
    return layers


def widths_dict(layers: list[Layer], widths: list[int]) -> dict:
    """The ``encoder_widths`` model argument (see :func:`resize_encoder`) of ``widths``, one int per layer of
    ``layers``."""
    named = dict(zip((layer.name for layer in layers), widths))
    blocks = sorted({layer.block for layer in layers if layer.block is not None})
    return {
        "subsampling": [named["subsampling.0"], named["subsampling.1"]],
        "blocks": [{short: named[f"blocks.{i}.{short}"] for short, _, _ in BLOCK_LAYERS} for i in blocks],
    }


def resize_subsampling(encoder: nn.Module, channels: tuple[int, int]) -> None:
    """Replace the two Conv2d layers of the conv2d subsampling front end by ones with ``channels`` (c1, c2) output
    channels, and the projection after them to match (fresh weights). ESPnet gives both convolutions
    ``output_size`` channels and has no argument for it."""
    _check_supported(encoder)
    conv, out = encoder.embed.conv, encoder.embed.out
    c1, c2 = channels
    freq = out[0].in_features // conv[2].out_channels
    conv[0] = nn.Conv2d(1, c1, 3, 2)
    conv[2] = nn.Conv2d(c1, c2, 3, 2)
    out[0] = nn.Linear(c2 * freq, out[0].out_features)


def resize_encoder(encoder: nn.Module, widths: Mapping) -> None:
    """Replace the encoder's layers by ones of the given widths, in place (fresh weights: load a state dict next).

    ESPnet's ConformerEncoder takes one ``linear_units`` and one head count for all blocks, so a structurally
    pruned encoder (different widths per block) is built at full size and then resized here. ``widths`` is
    ``{"subsampling": [c1, c2], "blocks": [{"ffn_macaron": U, "heads": H, "conv": C, "ffn": U}, ...]}``: output
    channels of the two Conv2d subsampling layers; per block the hidden units of each feed-forward module, the
    attention heads (each keeps the head dimension d_k) and the conv-module channels (pointwise_conv1 has 2C rows for
    the GLU). The model width (output_size) is unchanged.
    """
    resize_subsampling(encoder, widths["subsampling"])
    blocks = getattr(encoder, BLOCKS)
    if len(widths["blocks"]) != len(blocks):
        raise ValueError(f"encoder_widths: {len(widths['blocks'])} blocks for an encoder of {len(blocks)}")
    for layer, block in zip(blocks, widths["blocks"]):
        d = layer.size
        for short, kind, name in BLOCK_LAYERS:
            if kind == "ffn" and getattr(layer, name) is not None:
                getattr(layer, name).w_1 = nn.Linear(d, block[short])
                getattr(layer, name).w_2 = nn.Linear(block[short], d)
        attn, heads = getattr(layer, ATTENTION), block["heads"]
        attn.h = heads
        inner = heads * attn.d_k
        attn.linear_q, attn.linear_k, attn.linear_v = (nn.Linear(d, inner) for _ in range(3))
        attn.linear_out = nn.Linear(inner, d)
        if hasattr(attn, "linear_pos"):
            attn.linear_pos = nn.Linear(d, inner, bias=False)
            attn.pos_bias_u = nn.Parameter(torch.zeros(heads, attn.d_k))
            attn.pos_bias_v = nn.Parameter(torch.zeros(heads, attn.d_k))
        module, channels = getattr(layer, CONV), block["conv"]
        kernel = module.depthwise_conv.kernel_size[0]
        module.pointwise_conv1 = nn.Conv1d(d, 2 * channels, 1)
        module.depthwise_conv = nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2, groups=channels)
        module.norm = nn.BatchNorm1d(channels)
        module.pointwise_conv2 = nn.Conv1d(channels, d, 1)
