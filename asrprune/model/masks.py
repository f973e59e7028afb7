"""Binary weight masks over the shared encoder: one mask shared by all languages, or one per language (a pathway).

A *prunable weight* θ (one per listed module) is replaced, through :mod:`torch.nn.utils.parametrize`, by θ ⊙ m_k,
where m_k is the bool mask of the batch's language k (or the only mask when masks are shared). Masks are bool
buffers ``masks`` of shape (K, *θ.shape) inside each parametrization, so ``state_dict()`` (Lightning checkpoints,
resume) carries them; θ itself is stored as ``<module>.parametrizations.weight.original`` and keeps its values where
it is masked, so a re-evaluated mask can bring a weight back with the value it had (PARP-style regrowth).

Prunable weights (:data:`PRUNABLE_MODULES`, 73 % of the mini model's 2.6 M parameters): in every conformer block the
two feed-forward modules (``feed_forward`` and ``feed_forward_macaron``: w_1, w_2), the self-attention projections
(linear_q/k/v/out) and the convolution module (pointwise_conv1, depthwise_conv, pointwise_conv2). Not pruned:
``linear_pos`` (it projects the fixed sinusoidal relative-position table, never the utterance, so a language has
nothing of its own to select there; 4 % of the parameters), biases, LayerNorm/BatchNorm parameters and
``pos_bias_u/v`` (tiny, and scale/shift every unit), the conv2d subsampling front-end (the first layers see raw
filterbanks and are the layers that pruning studies leave dense; its 2736->144 projection would dominate a uniform
per-tensor sparsity) and the output layer (per-token rows; JoinAP output layers compute it from phonological
vectors, so a language-specific mask there would decouple phones that JoinAP ties together). BatchNorm running
statistics stay shared by all languages.

Update rule (what "a batch of language l updates only the weights in m_l" means here):
- the gradient of θ is the gradient of θ ⊙ m_l, i.e. zero outside m_l (:class:`_MaskedWeight`), and
  :func:`masked_optimizer_step` restores θ and its optimizer state (AdamW moments) outside the trainable positions
  after the step, so momentum and weight decay cannot move weights that belong only to other languages' pathways;
- with ``dormant_trainable`` (the adaptive methods), weights in *no* language's mask ("dormant": unused by every
  pathway) receive the straight-through gradient of the masked weight as PARP does, so magnitude re-pruning can let
  them grow back; weights in another language's pathway are still never touched.

Optional per-language ``scores`` (one float Parameter per mask row) receive the straight-through gradient
∂L/∂(θ⊙m) ⊙ θ (movement pruning); pruning criteria read or train them (``asrprune.pruning.masking.criteria``).
The main optimizer skips them because the criteria clear their gradient before it steps.

The compact format (:func:`pack_sparse`/:func:`unpack_sparse`) stores only the kept values of each prunable weight
(those in the union of the masks) plus the masks bit-packed with ``numpy.packbits``.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

# Module paths (relative to a conformer block ``encoder.encoders.<i>``) whose ``weight`` is prunable.
PRUNABLE_MODULES = (
    "feed_forward_macaron.w_1",
    "feed_forward_macaron.w_2",
    "self_attn.linear_q",
    "self_attn.linear_k",
    "self_attn.linear_v",
    "self_attn.linear_out",
    "conv_module.pointwise_conv1",
    "conv_module.depthwise_conv",
    "conv_module.pointwise_conv2",
    "feed_forward.w_1",
    "feed_forward.w_2",
)

# Keys of a mask spec (``model.masks`` in a config / checkpoint hyperparameters).
SPEC_DEFAULTS = {"per_language": True, "scores": False, "dormant_trainable": False}

SPARSE_FORMAT = "asrprune-sparse-1"


@dataclass
class MaskState:
    """Which mask row the next forward pass uses, shared by all parametrizations of one model.

    ``seen`` holds the rows used by gradient-recording forwards since the last optimizer step (several with gradient
    accumulation); :func:`masked_optimizer_step` lets the step change only their weights and then clears it.
    """

    num_masks: int
    per_language: bool
    dormant_trainable: bool
    current: int = 0
    seen: set = field(default_factory=set)

    def select(self, lang_ids: torch.Tensor, record: bool) -> None:
        """Use the mask of the batch's language (lang_ids long (B,)); per-language masks need one language.

        The row must be known on the host to pick the mask, so per-language masks read ``lang_ids`` once per
        forward (one device-to-host copy on a GPU).
        """
        if self.per_language:
            ids = set(lang_ids.tolist())
            if len(ids) != 1:
                raise ValueError(
                    "per-language masks (pathways) need single-language batches: set data.single_language_batches: "
                    f"true in the training config (this batch has language ids {sorted(ids)})"
                )
            self.current = ids.pop()
        if record:
            self.seen.add(self.current)

    def seen_rows(self, device: torch.device) -> torch.Tensor:
        """Bool (num_masks,) on ``device``: the rows used since the last step (the current one if none)."""
        rows = torch.zeros(self.num_masks, dtype=torch.bool)
        rows[sorted(self.seen or {self.current})] = True
        return rows.to(device, non_blocking=True)


class _MaskedWeight(torch.autograd.Function):
    """θ ⊙ m forward; backward gives θ the gradient only where ``grad_mask`` is set and the scores ∂L/∂(θ⊙m) ⊙ θ.

    Hand-written because no library offers per-task masks with a straight-through gradient to dormant weights and
    to mask scores (torch.nn.utils.prune and torch.ao.pruning keep one mask and multiply the gradient by it).
    """

    @staticmethod
    def forward(ctx, weight, mask, grad_mask, scores):
        ctx.save_for_backward(weight, grad_mask)
        return weight * mask

    @staticmethod
    def backward(ctx, grad):
        weight, grad_mask = ctx.saved_tensors
        grad_scores = grad * weight if ctx.needs_input_grad[3] else None
        return grad * grad_mask, None, None, grad_scores


class PathwayMask(nn.Module):
    """Parametrization θ -> θ ⊙ masks[state.current] of one weight.

    Buffers: ``masks`` bool (K, *shape). Parameters: ``scores`` (K float tensors of ``shape``) when asked for.
    """

    def __init__(self, shape: torch.Size, state: MaskState, scores: bool):
        super().__init__()
        self.state = state
        self.register_buffer("masks", torch.ones(state.num_masks, *shape, dtype=torch.bool))
        self.scores = (
            nn.ParameterList(nn.Parameter(torch.zeros(shape)) for _ in range(state.num_masks)) if scores else None
        )

    def trainable(self, rows: torch.Tensor) -> torch.Tensor:
        """Bool (*shape): positions an optimizer step after batches of the mask rows set in ``rows`` (bool (K,), on
        the masks' device, so no host synchronisation) may change."""
        selected = rows.view(-1, *(1,) * (self.masks.dim() - 1))
        return self._with_dormant((self.masks & selected).any(0))

    def _with_dormant(self, allowed: torch.Tensor) -> torch.Tensor:
        """``allowed`` (bool (*shape)) plus the weights in no mask row when those are trainable."""
        return allowed | ~self.masks.any(0) if self.state.dormant_trainable else allowed

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        row = self.state.current
        mask = self.masks[row]
        needs_function = torch.is_grad_enabled() and (self.scores is not None or self.state.dormant_trainable)
        if not needs_function:
            return weight * mask
        grad_mask = self._with_dormant(mask)
        scores = self.scores[row] if self.scores is not None else None
        return _MaskedWeight.apply(weight, mask, grad_mask, scores)


class ModelMasks:
    """The masks of one model: ``names`` (paths under the encoder, e.g. ``encoders.0.feed_forward.w_1``) in order.

    Created by :meth:`attach`; :class:`asrprune.model.conformer_ctc.ConformerCTC` keeps it as ``model.masks``.
    """

    def __init__(self, state: MaskState, modules: Mapping[str, nn.Module], spec: Mapping):
        self.state = state
        self.spec = dict(spec)
        self._modules = dict(modules)
        self.names = list(modules)

    @classmethod
    def attach(cls, encoder: nn.Module, num_languages: int, spec: Mapping) -> "ModelMasks":
        """Parametrize the prunable weights of an ESPnet conformer ``encoder`` with all-ones masks.

        ``spec``: ``per_language`` (K = num_languages masks, else 1), ``scores`` (per-row score parameters),
        ``dormant_trainable`` (see the module docstring).
        """
        unknown = sorted(set(spec) - set(SPEC_DEFAULTS))
        if unknown:
            raise ValueError(f"model.masks: unknown keys {unknown}; known: {sorted(SPEC_DEFAULTS)}")
        spec = {**SPEC_DEFAULTS, **spec}
        state = MaskState(num_languages if spec["per_language"] else 1, spec["per_language"], spec["dormant_trainable"])
        modules = {}
        for block_index in range(len(encoder.encoders)):
            for path in PRUNABLE_MODULES:
                name = f"encoders.{block_index}.{path}"
                try:
                    module = encoder.get_submodule(name)
                except AttributeError:
                    continue  # e.g. no macaron feed-forward in this encoder
                parametrize.register_parametrization(
                    module, "weight", PathwayMask(module.weight.shape, state, spec["scores"])
                )
                modules[name] = module
        if not modules:
            raise ValueError("model.masks: the encoder has none of the prunable modules " + ", ".join(PRUNABLE_MODULES))
        return cls(state, modules, spec)

    def parametrization(self, name: str) -> PathwayMask:
        return self._modules[name].parametrizations.weight[0]

    def weight(self, name: str) -> torch.Tensor:
        """The stored (unmasked) weight θ, a Parameter."""
        return self._modules[name].parametrizations.weight.original

    def mask(self, name: str) -> torch.Tensor:
        """Bool (K, *shape), the live buffer."""
        return self.parametrization(name).masks

    def scores(self, name: str, row: int) -> torch.Tensor:
        scores = self.parametrization(name).scores
        if scores is None:
            raise ValueError("these masks were attached without scores (model.masks.scores: false)")
        return scores[row]

    def score_parameters(self) -> list[nn.Parameter]:
        return [p for name in self.names for p in (self.parametrization(name).scores or [])]

    def select(self, lang_ids: torch.Tensor, record: bool) -> None:
        self.state.select(lang_ids, record)

    @torch.no_grad()
    def set_row(self, row: int, masks: Mapping[str, torch.Tensor]) -> None:
        """Replace mask row ``row`` of every weight named in ``masks`` (bool tensors of the weight's shape)."""
        for name, mask in masks.items():
            self.mask(name)[row] = mask

    def num_weights(self) -> int:
        return sum(self.weight(name).numel() for name in self.names)

    def statistics(self, languages: list[str]) -> dict:
        """Per-language sparsity, the union's sparsity and the overlap between languages' masks (fractions).

        ``overlap[i][j]`` = |m_i ∧ m_j| / |m_i ∨ m_j| (Jaccard; 1 on the diagonal). With a shared mask every
        language has the same row. ``union_sparsity`` is what must be stored to serve all languages.
        """
        # Accumulated on the masks' device and read once at the end (one host synchronisation, not one per tensor).
        device = self.mask(self.names[0]).device
        rows = range(self.state.num_masks)
        kept = torch.zeros(len(rows), len(rows), dtype=torch.float64, device=device)
        either = torch.zeros_like(kept)
        union = torch.zeros((), dtype=torch.float64, device=device)
        for name in self.names:
            masks = self.mask(name).flatten(1).double()
            kept += masks @ masks.T
            count = masks.sum(1)
            either += count[:, None] + count[None, :] - masks @ masks.T
            union += masks.amax(0).sum()
        kept, either, union = kept.cpu(), either.cpu(), int(union)
        total = self.num_weights()
        labels = languages if self.state.per_language else ["shared"]
        overlap = (kept / either.clamp_min(1)).tolist()
        return {
            "prunable_weights": total,
            "languages": labels,
            "sparsity": {lab: 1 - float(kept[i, i]) / total for i, lab in enumerate(labels)},
            "union_sparsity": 1 - union / total,
            "overlap": overlap,
        }


def topk_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Bool mask of ``scores``' shape keeping exactly round(numel * (1 - sparsity)) highest scores (ties: by index)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    keep = round(scores.numel() * (1.0 - sparsity))
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    mask[torch.topk(scores.flatten(), keep, sorted=False).indices] = True
    return mask.view_as(scores)


def initial_scores(weight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Scores whose top-|mask| set is ``mask``: mask + |θ|/max|θ| (kept in [1, 2], pruned in [0, 1])."""
    magnitude = weight.detach().abs()
    return mask.float() + magnitude / magnitude.max().clamp_min(1e-12)


def _rows_seen_by_all_ranks(state: MaskState, device: torch.device) -> torch.Tensor:
    """Bool (K,) on ``device``: mask rows used since the last step, on any process. Under DDP the gradients of all
    ranks' languages are averaged, so every rank must let the same pathways change to keep the replicas identical
    (with ``data.same_language_across_ranks`` all ranks used the same row and the union is that row). One
    all_reduce of K bytes on the device (before: an all_gather_object of pickled lists through the host)."""
    rows = state.seen_rows(device)
    if state.per_language and torch.distributed.is_available() and torch.distributed.is_initialized():
        rows = rows.to(torch.uint8)
        torch.distributed.all_reduce(rows, op=torch.distributed.ReduceOp.MAX)
        rows = rows.bool()
    return rows


@contextlib.contextmanager
def _snapshot(masks: ModelMasks, optimizer: torch.optim.Optimizer) -> Iterator[Callable[[], None]]:
    """Copy every prunable θ and its same-shaped optimizer state; yield a function restoring the frozen positions."""
    saved = []
    for name in masks.names:
        weight = masks.weight(name)
        state = {key: value.clone() for key, value in optimizer.state.get(weight, {}).items()
                 if torch.is_tensor(value) and value.shape == weight.shape}
        saved.append((name, weight, weight.detach().clone(), state))

    def restore() -> None:
        rows = _rows_seen_by_all_ranks(masks.state, saved[0][1].device)
        with torch.no_grad():
            for name, weight, before, state in saved:
                trainable = masks.parametrization(name).trainable(rows)
                weight.copy_(torch.where(trainable, weight, before))  # where(): faster than boolean indexing
                for key, value in state.items():
                    current = optimizer.state[weight][key]
                    current.copy_(torch.where(trainable, current, value))

    yield restore


def masked_optimizer_step(masks: ModelMasks, optimizer: torch.optim.Optimizer, step: Callable[[], None]) -> None:
    """Run ``step()`` (an optimizer step that may run the forward/backward closure itself) so that only weights
    trainable for the languages whose batches were seen since the last step change.

    θ and its same-shaped optimizer state (AdamW exp_avg/exp_avg_sq) are restored outside those positions: momentum
    and weight decay cannot move a weight of another language's pathway (or a pruned weight of a shared mask).
    Nothing is copied when every position is trainable (a shared mask with dormant weights trainable).
    """
    everything_trainable = not masks.state.per_language and masks.state.dormant_trainable
    if everything_trainable:
        step()
    else:
        with _snapshot(masks, optimizer) as restore:
            step()
            restore()
    masks.state.seen.clear()


# ---- compact storage ------------------------------------------------------------------------------------------

def _original_key(prefix: str, name: str) -> str:
    return f"{prefix}{name}.parametrizations.weight.original"


def _masks_key(prefix: str, name: str) -> str:
    return f"{prefix}{name}.parametrizations.weight.0.masks"


def pack_sparse(state_dict: Mapping[str, torch.Tensor], masks: ModelMasks, rows: list[int], prefix: str) -> dict:
    """Compact form of a masked model's ``state_dict`` keeping mask ``rows`` only.

    ``prefix`` is the encoder's key prefix in ``state_dict`` (e.g. ``model.encoder.``). Returns ``{"dense": {key:
    tensor}, "sparse": {name: {"shape", "masks": uint8 (len(rows), ceil(numel/8)), "values": float (kept,)}}}``
    with the values of θ at the union of the kept rows; score parameters are dropped.
    """
    sparse, dropped = {}, set()
    for name in masks.names:
        original, mask_key = _original_key(prefix, name), _masks_key(prefix, name)
        chosen = state_dict[mask_key][rows]
        union = chosen.any(0)
        sparse[name] = {
            "shape": list(state_dict[original].shape),
            "masks": torch.from_numpy(np.packbits(chosen.flatten(1).cpu().numpy(), axis=1)),
            "values": state_dict[original][union].clone(),
        }
        dropped |= {original, mask_key}
    dense = {key: value for key, value in state_dict.items()
             if key not in dropped and ".parametrizations.weight.0.scores." not in key}
    return {"dense": dense, "sparse": sparse}


def unpack_sparse(packed: Mapping, prefix: str) -> dict[str, torch.Tensor]:
    """The state dict (masked model with ``len(rows)`` mask rows, no scores) of a :func:`pack_sparse` result."""
    state = dict(packed["dense"])
    for name, entry in packed["sparse"].items():
        shape = entry["shape"]
        numel = math.prod(shape)
        # numpy unpacks the bits, on the host whatever device the export was loaded onto.
        bits = np.unpackbits(entry["masks"].cpu().numpy(), axis=1, count=numel).astype(bool)
        values = entry["values"]
        rows = torch.from_numpy(bits).view(-1, *shape).to(values.device)
        weight = torch.zeros(shape, dtype=values.dtype, device=values.device)
        weight[rows.any(0)] = values
        state[_original_key(prefix, name)] = weight
        state[_masks_key(prefix, name)] = rows
    return state


def is_sparse_export(checkpoint: Mapping) -> bool:
    return checkpoint.get("format") == SPARSE_FORMAT


# ---- serving a language the masks were not made for -------------------------------------------------------------

def append_mask_row(encoder_state: Mapping[str, torch.Tensor], masks: ModelMasks, rows: list[int]) -> dict:
    """``encoder_state`` (an encoder ``state_dict``) with one more mask row per prunable weight, the union of mask
    ``rows`` (all rows: the union of the pathways; one row: that language's pathway). With scores, the new row's
    scores are :func:`initial_scores` of its mask."""
    state = dict(encoder_state)
    for name in masks.names:
        key = f"{name}.parametrizations.weight.0.masks"
        new = state[key][rows].any(0, keepdim=True)
        state[key] = torch.cat([state[key], new])
        if masks.spec["scores"]:
            weight = state[f"{name}.parametrizations.weight.original"]
            state[f"{name}.parametrizations.weight.0.scores.{len(state[key]) - 1}"] = initial_scores(weight, new[0])
    return state
