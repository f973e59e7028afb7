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

Reconstruction modes (:func:`reconstruction_modes`, selectable per unit kind): ``none`` (plain removal), ``fold``
(the fold above) and ``lstsq`` (:func:`lstsq_compensate`: the next layer's kept columns and bias are
refitted in closed form so that its output on synthetic inputs drawn from the model's own statistics changes as
little as possible). Where each one is exact, approximate or can hurt, per unit type:

==============  ===========================================  ==================================================
unit            fold                                         lstsq
==============  ===========================================  ==================================================
subsampling     exact for positively proportional filters    exact if the pruned channel's ReLU map is an affine
                (ReLU); else approximate                     function of kept maps; else best affine fit
ffn (Swish)     exact only for identical rows (s = 1); a     exact for any affine dependence of activations
                scaled copy (s != 1) or a merely similar     (copies, scaled copies, constants); else the
                unit is approximate and can hurt (the added  least-squares optimum on the synthetic inputs,
                column is not the best fit, just a guess)    never worse than removal on them
conv (GLU)      exact only for identical channels            with inputs="model", same, on the post-Swish output;
                                                             by default channels are drawn independently from
                                                             BatchNorm's statistics: a bias correction only
heads           exact for equal attention maps with values   per linear_out column fit; exact only if a pruned
                in the span of the target's                  head's outputs are affine in kept heads' outputs
==============  ===========================================  ==================================================

The fold of a *similar* unit adds ``s * w_j`` whatever the actual correlation of the two activations, so it can
overshoot (that is how "uniform + merging" ends up worse than plain pruning). The least-squares refit shrinks
towards no compensation when the activations are not correlated, so on its synthetic inputs it is never worse than
removal; on real inputs it is as good as the synthetic distribution is representative. One quick check (output KL
on synthetic filterbanks, a trained mini-size pathways model already pruned to 0.8, keep 0.6 of every layer's
units; no PER): none 0.75, fold 1.01, lstsq 0.26 nats/frame; per kind alone lstsq was the best of the three for
subsampling, ffn, heads and conv. Dev PER (benchmarks/autodfp_reconstruction.py) agreed for subsampling, ffn and
heads but not for conv channels, where every compensation was worse than removal although the KL said otherwise;
hence the default :data:`DEFAULT_SPEC` (``lstsq,conv=none``).
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


# --------------------------------------------------------------------------------------------------------------------
# Reconstruction modes, and the least-squares compensation.
# --------------------------------------------------------------------------------------------------------------------

MODES = ("none", "fold", "lstsq")
# The least-squares refit everywhere but the conv-module channels, which are removed without compensation: on
# calibration 2's mini model, uniform pruning of every unit kind at preserved ratios 0.8 / 0.6 / 0.5 reached dev PER
# 26.8 / 31.2 / 34.3 with this mix, against 27.6 / 32.5 / 36.1 without compensation, 30.7 / 44.1 / 44.6 with the
# fold everywhere and 28.8 / 38.2 / 46.6 with lstsq everywhere
# (benchmarks/results/autodfp_reconstruction_cal2_bnconv.md, one model, 400 dev utterances). Every compensation of conv channels measured worse than none there.
DEFAULT_SPEC = "lstsq,conv=none"
LEGACY_SPEC = "fold"  # what pruning did before modes existed (summaries without a reconstruction key mean this)


def reconstruction_modes(spec: str | dict | None = None) -> dict[str, str]:
    """The reconstruction mode of every unit kind (:data:`asrprune.model.conformer_layout.KINDS`) from ``spec``:
    None (the default, :data:`DEFAULT_SPEC`), a dict ``{kind: mode}`` (missing kinds: the default's), or a string of
    comma-separated items, each either a mode for every kind or ``kind=mode``, later items overriding earlier
    ones and the default: ``"lstsq"``, ``"fold,ffn=lstsq,conv=lstsq"``, ``"none,heads=fold"``, ``"heads=none"``.
    Modes (:data:`MODES`):

    - ``none``: the pruned units are removed, nothing is compensated (strength is ignored).
    - ``fold``: :func:`fold` (nearest kept unit by signature cosine, Neuron Merging's scale; see the module
      docstring for where it is exact).
    - ``lstsq``: :func:`lstsq_compensate` (closed-form least-squares refit of the next layer on synthetic inputs).
    """
    from asrprune.model.conformer_layout import KINDS

    def parse(text: str) -> list[tuple[str | None, str]]:
        return [tuple(item.split("=", 1)) if "=" in item else (None, item)
                for item in (part.strip() for part in text.split(",")) if item]

    items = parse(DEFAULT_SPEC)
    if spec is not None:
        items += list(spec.items()) if isinstance(spec, dict) else parse(spec)
    modes: dict[str, str] = {}
    for kind, mode in items:
        if mode not in MODES:
            raise ValueError(f"reconstruction mode {mode!r}: choose one of {MODES}")
        if kind is None:
            modes = {k: mode for k in KINDS}
        elif kind not in KINDS:
            raise ValueError(f"reconstruction: unit kind {kind!r}: choose one of {KINDS}")
        else:
            modes[kind] = mode
    return modes


def modes_text(modes: dict[str, str]) -> str:
    """The canonical string of a mode dict (one mode if all kinds agree, else ``kind=mode`` items)."""
    values = set(modes.values())
    if len(values) == 1:
        return values.pop()
    return ",".join(f"{kind}={mode}" for kind, mode in modes.items())


# The LayerNorm in front of each block layer (ESPnet EncoderLayer, normalize_before=True, the default of
# asrprune's conformer): its affine weight/bias shape the synthetic inputs of :class:`LstsqContext`.
_BLOCK_NORMS = {"ffn_macaron": "norm_ff_macaron", "heads": "norm_mha", "conv": "norm_conv", "ffn": "norm_ff"}


class LstsqContext:
    """Synthetic, data-free inputs and per-unit activations for :func:`lstsq_compensate`.

    Everything is drawn from the model's own statistics, nothing from a corpus:

    - block layers (ffn, heads), ``inputs="gaussian"`` (the default): the block input after its pre-LayerNorm
      is ``gamma * z + beta``, z ~ N(0, I) i.i.d. per frame and dimension (a LayerNorm output has zero mean and unit
      variance over the model width before its affine map; correlations across dimensions and frames are not
      modelled), gamma/beta the LayerNorm's weight/bias; ``frames`` frames (in sequences of ``sequence_frames`` for
      heads).
    - conv-module channels, ``inputs="gaussian"``: the BatchNorm in front of the Swish was fitted on real frames,
      so its input has per channel its running mean and variance, and its output is drawn as
      ``gamma_bn * z + beta_bn`` (z ~ N(0, I), channels independent), then Swish. Channels being independent, the
      least-squares refit reduces to replacing each pruned channel by its mean (a bias correction). Propagating
      the i.i.d. LayerNorm outputs above through the GLU and the depthwise conv instead made every channel a
      near-linear function of the same few random inputs, so pruned channels looked predictable from kept ones,
      and the refit fitted to that ruined the model (conv channels kept 0.5 on calibration 2's mini model: dev PER
      66.3 against 29.1 for plain removal, ``benchmarks/results/autodfp_reconstruction_cal2.md``).
    - block layers, ``inputs="model"``: the outputs of the block's pre-LayerNorm when the *original* model runs on
      ``block_utterances`` synthetic filterbanks of ``block_frames`` frames drawn from its CMVN statistics
      (:func:`.distortion.synthetic_features`; each language's pathway for its share of the utterances): keeps the
      residual stream's temporal structure, but fewer samples. In one check on a trained mini-size model (4 blocks,
      d 144, per-language masks; output KL on synthetic inputs) it was worse than ``gaussian`` for heads and conv
      channels (e.g. keep 3/5 of conv channels: KL 0.29 vs 0.11, plain removal 0.14), so it is not the default.
    - subsampling layers: speech-like filterbanks from the model's CMVN statistics
      (:func:`.distortion.synthetic_features`), normalised by the model's CMVN, as the encoder sees them.

    The activations of every unit of a layer are then computed from the (current, partly pruned) ``state`` with the
    layer's own weights and activation functions (Swish of the feed-forward; GLU, depthwise conv, BatchNorm with
    running statistics and Swish of the conv module; softmax attention with ESPnet's relative-position terms; ReLU
    of the subsampling convs). ``model`` supplies the activation modules, the positional table and the CMVN
    statistics; its weights are not read.

    Activations are cached per layer and reused while the tensors they are computed from are unchanged (a search
    prunes the same model many times: only subsampling.1's inputs depend on the previous layer's decision).
    """

    def __init__(self, model, frames: int = 4096, sequence_frames: int = 128, utterances: int = 8,
                 utterance_frames: int = 200, seed: int = 0, ridge: float = 1e-5, inputs: str = "gaussian",
                 block_utterances: int = 16, block_frames: int = 800):
        if inputs not in ("model", "gaussian"):
            raise ValueError(f"LstsqContext inputs {inputs!r}: choose 'model' or 'gaussian'")
        self.model, self.frames, self.sequence_frames = model, frames, sequence_frames
        self.utterances, self.utterance_frames, self.seed, self.ridge = utterances, utterance_frames, seed, ridge
        self.inputs, self.block_utterances, self.block_frames = inputs, block_utterances, block_frames
        self._cache: dict[str, tuple[list[torch.Tensor], torch.Tensor]] = {}
        self._norm_outputs: dict[str, torch.Tensor] | None = None

    def _model_norm_outputs(self) -> dict[str, torch.Tensor]:
        """Pre-LayerNorm outputs (B, T', d) float64 of every block of the original model on synthetic filterbanks,
        by module path (``encoders.<i>.<norm>``); computed once."""
        if self._norm_outputs is None:
            from asrprune.pruning.autodfp.distortion import synthetic_features

            model = self.model
            feats, lengths = synthetic_features(model.cmvn.mean.detach().cpu(), model.cmvn.std.detach().cpu(),
                                                self.block_utterances, self.block_frames, seed=self.seed + 1)
            captured: dict[str, list[torch.Tensor]] = {}
            hooks = []
            for i, block in enumerate(model.encoder.encoders):
                for norm in _BLOCK_NORMS.values():
                    name = f"encoders.{i}.{norm}"
                    hooks.append(getattr(block, norm).register_forward_hook(
                        lambda _m, _i, out, name=name: captured.setdefault(name, []).append(out.detach())))
            languages = torch.arange(len(feats)) % len(model.languages)
            was_training = model.training
            try:
                model.eval()
                with torch.inference_mode():
                    for lang in languages.unique().tolist():
                        utts = (languages == lang).nonzero().squeeze(1)
                        model(feats[utts], lengths[utts], torch.full((len(utts),), lang))
            finally:
                for hook in hooks:
                    hook.remove()
                model.train(was_training)
            self._norm_outputs = {name: torch.cat(parts).cpu().double() for name, parts in captured.items()}
        return self._norm_outputs

    def cached_activations(self, state: dict, layer: Layer, width: int) -> torch.Tensor:
        """:meth:`activations`, reused if every tensor of the encoder state it reads is as at the last call."""
        prefix = "embed.conv." if layer.kind == "subsampling" else f"encoders.{layer.block}."
        keys = sorted(k for k in state if k.startswith(prefix) and (
            layer.kind == "subsampling" or any(k.startswith(f"{prefix}{part}.") for part in (
                _BLOCK_NORMS[layer.name.split(".")[-1]], *{slot.key[len(prefix):].split(".")[0]
                                                            for slot in layer.inputs}))))
        used = [state[k] for k in keys]
        hit = self._cache.get(layer.name)
        if hit is not None and len(hit[0]) == len(used) and all(
                a.shape == b.shape and torch.equal(a, b) for a, b in zip(hit[0], used)):
            return hit[1]
        acts = self.activations(state, layer, width)
        self._cache[layer.name] = ([t.clone() for t in used], acts)
        return acts

    def _generator(self, name: str) -> torch.Generator:
        import zlib

        return torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(name.encode()))

    def block_inputs(self, state: dict, layer: Layer, sequences: int, frames: int) -> torch.Tensor:
        """(sequences, frames, d) float64 synthetic LayerNorm outputs in front of ``layer`` (a block layer); with
        ``inputs="model"`` the captured ones (their own count and length, the arguments unused)."""
        norm = f"encoders.{layer.block}.{_BLOCK_NORMS[layer.name.split('.')[-1]]}"
        if self.inputs == "model":
            return self._model_norm_outputs()[norm]
        gamma, beta = state[f"{norm}.weight"].double(), state[f"{norm}.bias"].double()
        z = torch.randn(sequences, frames, gamma.numel(), generator=self._generator(layer.name), dtype=torch.float64)
        return z * gamma + beta

    def activations(self, state: dict, layer: Layer, width: int) -> torch.Tensor:
        """What the next layer reads, (samples, columns) float64: one column per unit (subsampling, ffn, conv; for
        subsampling every (time, frequency) position is a sample) or, for heads, one column per input column of
        linear_out (head h owns columns h*d_k .. h*d_k + d_k - 1)."""
        import torch.nn.functional as F

        s = {key: value.double() for key, value in state.items()
             if key.startswith(("embed.", f"encoders.{layer.block}."))}
        if layer.kind == "subsampling":
            from asrprune.pruning.autodfp.distortion import synthetic_features

            cmvn = self.model.cmvn
            feats, _ = synthetic_features(cmvn.mean.detach().cpu(), cmvn.std.detach().cpu(), self.utterances,
                                          self.utterance_frames, seed=self.seed)
            with torch.no_grad():
                x = cmvn(feats.to(cmvn.mean.device)).cpu().double().unsqueeze(1)  # (B, 1, T, F)
            x = F.relu(F.conv2d(x, s["embed.conv.0.weight"], s["embed.conv.0.bias"], stride=2))
            if layer.name == "subsampling.1":
                x = F.relu(F.conv2d(x, s["embed.conv.2.weight"], s["embed.conv.2.bias"], stride=2))
            return x.movedim(1, -1).reshape(-1, width)
        block = self.model.encoder.encoders[layer.block]
        m = f"encoders.{layer.block}"
        if layer.kind == "ffn":
            module = block.feed_forward_macaron if layer.name.endswith("macaron") else block.feed_forward
            key = f"{m}.{'feed_forward_macaron' if layer.name.endswith('macaron') else 'feed_forward'}"
            y = self.block_inputs(state, layer, 1, self.frames).reshape(-1, state[f"{key}.w_1.weight"].shape[1])
            with torch.no_grad():
                return module.activation(F.linear(y, s[f"{key}.w_1.weight"], s[f"{key}.w_1.bias"]))
        if layer.kind == "conv" and self.inputs == "gaussian":
            # BatchNorm output drawn from BatchNorm's own statistics: see the class docstring.
            c = f"{m}.conv_module.norm"
            z = torch.randn(self.frames, width, generator=self._generator(layer.name), dtype=torch.float64)
            with torch.no_grad():
                return block.conv_module.activation(z * s[f"{c}.weight"] + s[f"{c}.bias"])
        sequences = max(1, -(-self.frames // self.sequence_frames))
        y = self.block_inputs(state, layer, sequences, self.sequence_frames)  # (B, T, d)
        if layer.kind == "conv":
            c = f"{m}.conv_module"
            h = F.conv1d(y.transpose(1, 2), s[f"{c}.pointwise_conv1.weight"], s[f"{c}.pointwise_conv1.bias"])
            h = F.glu(h, dim=1)
            kernel = s[f"{c}.depthwise_conv.weight"]
            h = F.conv1d(h, kernel, s[f"{c}.depthwise_conv.bias"], padding=(kernel.shape[-1] - 1) // 2, groups=width)
            h = F.batch_norm(h, s[f"{c}.norm.running_mean"], s[f"{c}.norm.running_var"], s[f"{c}.norm.weight"],
                             s[f"{c}.norm.bias"], training=False, eps=block.conv_module.norm.eps)
            with torch.no_grad():
                h = block.conv_module.activation(h)
            return h.transpose(1, 2).reshape(-1, width)
        return self._head_contexts(s, f"{m}.self_attn", block.self_attn, y, width)

    def _head_contexts(self, s: dict, a: str, attn, y: torch.Tensor, heads: int) -> torch.Tensor:
        """Per-head attention outputs (B*T, heads*d_k) of ESPnet's RelPositionMultiHeadedAttention (no padding
        mask), computed from the state's weights; the module supplies only rel_shift."""
        import math
        import torch.nn.functional as F

        batch, frames, _ = y.shape
        d_k = attn.d_k

        def project(name, x):
            return F.linear(x, s[f"{a}.linear_{name}.weight"], s.get(f"{a}.linear_{name}.bias")).view(
                x.shape[0], -1, heads, d_k)

        pos_enc = self.model.encoder.embed.out[-1]
        with torch.no_grad():
            pos_enc.extend_pe(y[:, :, :1].float())
            centre = pos_enc.pe.size(1) // 2
            pos_emb = pos_enc.pe[:, centre - frames + 1: centre + frames].cpu().double()  # (1, 2T-1, d)
        q, k, v = project("q", y), project("k", y).transpose(1, 2), project("v", y).transpose(1, 2)
        p = project("pos", pos_emb).transpose(1, 2)  # (1, H, 2T-1, d_k)
        ac = torch.matmul((q + s[f"{a}.pos_bias_u"]).transpose(1, 2), k.transpose(-2, -1))
        bd = attn.rel_shift(torch.matmul((q + s[f"{a}.pos_bias_v"]).transpose(1, 2), p.transpose(-2, -1)))
        weights = torch.softmax((ac + bd) / math.sqrt(d_k), dim=-1)
        return torch.matmul(weights, v).transpose(1, 2).reshape(batch * frames, heads * d_k)


def least_squares(kept: torch.Tensor, pruned: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
    """Coefficients C ((K + 1), P) of the best affine reconstruction of ``pruned`` (n, P) from ``kept`` (n, K); the
    last row is the intercept. Solved in float64 with torch.linalg.lstsq (gelsd: a rank-deficient problem gets the
    minimum-norm solution) on centred data with every kept column scaled to unit standard deviation, plus a ridge
    penalty ``ridge * n * ||C_scaled||^2`` (so ``ridge`` is relative to each column's variance: 1e-5 shrinks a
    well-determined coefficient by about 1e-5 and only damps nearly collinear directions). Kept columns that are
    constant on the samples get coefficient 0."""
    x, y = kept.double(), pruned.double()
    x_mean, y_mean = x.mean(0), y.mean(0)
    scale = x.std(0, unbiased=False)
    # Constant kept columns (e.g. units whose weights a mask zeroes) carry nothing the intercept does not: left out
    # (coefficient 0), rather than scaled up from rounding noise.
    active = scale > 1e-6 * scale.max().clamp_min(1e-300)
    coef = torch.zeros(x.shape[1], y.shape[1], dtype=torch.float64)
    if bool(active.any()):
        xs, yc = (x[:, active] - x_mean[active]) / scale[active], y - y_mean
        if ridge > 0:
            xs = torch.cat([xs, (ridge * len(x)) ** 0.5 * torch.eye(xs.shape[1], dtype=xs.dtype)])
            yc = torch.cat([yc, torch.zeros(xs.shape[1], yc.shape[1], dtype=yc.dtype)])
        coef[active] = torch.linalg.lstsq(xs, yc, driver="gelsd").solution / scale[active, None]
    return torch.cat([coef, (y_mean - x_mean @ coef)[None]])


def lstsq_compensate(state: dict, layer: Layer, width: int, kept: torch.Tensor, pruned: torch.Tensor,
                     strength: float, context: LstsqContext) -> int:
    """Least-squares compensation (in place in ``state``) of removing ``pruned`` units of ``layer``.

    Let a (n, N) be what the next layer reads, on the synthetic inputs of ``context`` (:meth:`LstsqContext.
    activations`; N = units, or linear_out input columns for heads), W its weight restricted to those columns and b
    its bias. With the pruned columns P removed, the next layer's output on the samples is best reproduced
    (least squares, closed form) by W_K' = W_K + W_P C_K^T, b' = b + W_P c_0, where [C_K; c_0] = :func:`least_squares`
    of a_P on [a_K, 1]: each pruned column's activation is replaced by its best affine prediction from the kept
    ones (the UDFC idea, "a damaged channel is a linear combination of the others", fitted on synthetic inputs
    instead of derived from weights). ``strength`` scales the update (0: plain pruning, 1: full refit).

    Exact whenever every pruned activation is an affine function of the kept ones on all inputs (e.g. duplicated
    or proportional units for any activation function, a unit that is constant); otherwise optimal in the mean
    squared sense on the synthetic distribution only. For subsampling the map C is per channel and shared by all
    positions (conv.2's 3x3 kernels and embed.out's per-frequency columns get the same combination), which keeps
    the problem small (channels, not channels x frequencies, unknowns). For heads the fit is per column of
    linear_out (d_k columns per head), the attention maps being whatever the kept heads compute. With weight masks
    the refit writes into columns that are masked for some languages, so it is approximate there.

    Why no library: the refit is one small least-squares problem per layer (torch.linalg.lstsq); the hard part is
    the model-specific forward of each unit type from a partly pruned state dict (which Torch-Pruning and friends do
    not provide: see :mod:`asrprune.model.conformer_layout`). Returns how many units were compensated.
    """
    if strength <= 0 or len(pruned) == 0:
        return 0
    acts = context.cached_activations(state, layer, width)
    slot = layer.outputs[0]
    if layer.kind == "heads":  # per column of linear_out
        kept_cols, pruned_cols = slot.indices(kept, width), slot.indices(pruned, width)
        columns, block = width * slot.block, 1
    else:
        kept_cols, pruned_cols, columns, block = kept, pruned, width, slot.block
    coef = least_squares(acts[:, kept_cols], acts[:, pruned_cols], context.ridge)  # (K + 1, P)
    weight = state[slot.key]
    moved = weight.double().movedim(slot.dim, 0)  # (columns * block, out, ...)
    per = moved.reshape(columns, block, *moved.shape[1:]).clone()
    source = per[pruned_cols]  # (P, block, out, ...)
    per[kept_cols] += strength * torch.tensordot(coef[:-1], source, dims=1)
    state[slot.key] = per.reshape(moved.shape).movedim(0, slot.dim).to(weight.dtype).contiguous()
    bias_key = slot.key.removesuffix(".weight") + ".bias"
    if bias_key in state:
        offset = torch.tensordot(coef[-1], source, dims=1)  # (block, out, ...)
        dims = [0] + list(range(2, offset.dim()))
        state[bias_key] = (state[bias_key].double() + strength * offset.sum(dim=dims)).to(state[bias_key].dtype)
    return len(pruned)


def compensate(state: dict, layer: Layer, width: int, kept: torch.Tensor, pruned: torch.Tensor, strength: float,
               min_cosine: float, mode: str, context: LstsqContext | None = None) -> int:
    """Compensate the removal of ``pruned`` with reconstruction ``mode`` (:data:`MODES`); returns how many units
    were compensated. ``context`` is needed for ``lstsq``."""
    if mode == "none":
        return 0
    if mode == "fold":
        return fold(state, layer, width, kept, pruned, strength, min_cosine)
    if mode == "lstsq":
        if context is None:
            raise ValueError("lstsq reconstruction needs an LstsqContext")
        return lstsq_compensate(state, layer, width, kept, pruned, strength, context)
    raise ValueError(f"reconstruction mode {mode!r}: choose one of {MODES}")
