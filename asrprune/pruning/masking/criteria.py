"""Mask re-evaluation criteria: each gives, per prunable weight and mask row (language), a score whose top-k is kept.

- :class:`Magnitude`: |θ|. With shared θ every language gets the *same* mask (the re-evaluation is not
  language-aware); it is the PARP criterion and the control for the two below. With masks attached with ``adjust``
  (PARP per pathway, :mod:`asrprune.model.mask_parametrization`), a language ranks its kept |θ| against the
  adjusted values its own batches trained for the weights it excludes, so the masks become language-specific
  without a gradient criterion.
- :class:`Saliency`: per-language first-order saliency |θ ⊙ ∂L_l/∂(θ⊙m_l)|, an exponential moving average over
  that language's batches (as Intel Neural Compressor's snip_momentum), or with ``accumulate`` the mean over all of
  the language's batches since the last re-evaluation (the whole interval weighs equally: less churn from the last
  few noisy batches). The gradient is taken w.r.t. the *effective* weight, so it is non-zero at pruned positions
  too and estimates what restoring them would change.
- :class:`LearnedScores`: movement pruning's learnable per-language scores S_l, trained by the straight-through
  estimator: the forward pass uses θ ⊙ TopK(S_l) and ∂L/∂S_l = ∂L/∂(θ⊙m_l) ⊙ θ, stepped by their own Adam (no
  weight decay, ``lr``) so they do not enter the model's gradient clipping or LR schedule.

Pruned weights can regrow under every criterion because their score keeps moving: θ is never zeroed by pruning, the
effective-weight gradient is dense (saliency, scores), and with ``dormant_trainable`` masks the weights outside every
pathway keep receiving the straight-through gradient (magnitude, as in PARP); with ``adjust`` masks each language's
excluded weights train its adjusted values.

Churn control (margin, swap cap) and global ranking are options of the re-evaluation
(:class:`asrprune.pruning.masking.callbacks.AdaptiveMasking`), for every criterion.

The two gradient criteria read the gradient of the mask's ``scores`` parameters
(:class:`asrprune.model.mask_parametrization.PathwayMask`), so the masks must be attached with ``scores: true``; they clear it in
:meth:`Criterion.before_optimizer_step`, so the model's optimizer never moves the scores.
"""
from __future__ import annotations

import torch

from asrprune.model.mask_registry import ModelMasks
from asrprune.model.mask_scores import initial_scores


class Criterion:
    """Interface: ``needs_scores``; hooks called by :class:`asrprune.pruning.masking.callbacks.AdaptiveMasking`."""

    name = ""
    needs_scores = False

    def before_optimizer_step(self, masks: ModelMasks) -> None:
        """Called after backward, before gradient clipping and the optimizer step."""

    def score(self, masks: ModelMasks, name: str, row: int) -> torch.Tensor:
        raise NotImplementedError

    def after_reevaluation(self, masks: ModelMasks, rows: list[int]) -> None:
        """Called once the mask rows ``rows`` were re-evaluated."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class Magnitude(Criterion):
    name = "magnitude"

    def score(self, masks: ModelMasks, name: str, row: int) -> torch.Tensor:
        return masks.magnitude(name, row)


def _take_score_gradients(masks: ModelMasks):
    """Yield (name, row, ∂L/∂S_row) for every score with a gradient, and clear that gradient."""
    for name in masks.names:
        for row, scores in enumerate(masks.parametrization(name).scores):
            if scores.grad is not None:
                yield name, row, scores.grad
                scores.grad = None


class Saliency(Criterion):
    """EMA (decay ``decay`` per batch of the language) of |∂L/∂(θ⊙m) ⊙ θ|; float (K, *shape) per weight.

    ``accumulate``: instead the sum over the row's optimizer steps since the row was last re-evaluated, divided by
    their number (``decay`` unused); the sums restart after each re-evaluation and travel with the checkpoint
    (:meth:`state_dict`), so a resumed run ranks the same interval. A row without a batch in the interval keeps its
    mask (pruning further by magnitude inside it).
    """

    name = "saliency"
    needs_scores = True

    def __init__(self, decay: float = 0.9, accumulate: bool = False):
        self.decay = decay
        self.accumulate = accumulate
        self.ema: dict[str, torch.Tensor] = {}
        self.rows_seen: set[int] = set()
        self.batches: dict[int, int] = {}  # accumulate: batches per row since its last re-evaluation

    def _ema(self, masks: ModelMasks, name: str, like: torch.Tensor) -> torch.Tensor:
        """The EMA of ``name`` on ``like``'s device and dtype, created as zeros when missing.

        A resumed run restores the EMA where the checkpoint was read (the CPU), while the gradients live on the
        model's device (a GPU): the EMA moves there once, at its first use.
        """
        ema = self.ema.get(name)
        if ema is None:
            ema = torch.zeros_like(masks.mask(name), dtype=like.dtype, device=like.device)
        self.ema[name] = ema = ema.to(like.device)
        return ema

    def before_optimizer_step(self, masks: ModelMasks) -> None:
        rows = set()
        for name, row, grad in _take_score_gradients(masks):
            if self.accumulate:
                self._ema(masks, name, grad)[row].add_(grad.abs())
            else:
                self._ema(masks, name, grad)[row].mul_(self.decay).add_(grad.abs(), alpha=1.0 - self.decay)
            rows.add(row)
        if self.accumulate:
            for row in rows:
                self.batches[row] = self.batches.get(row, 0) + 1
        self.rows_seen |= rows

    def score(self, masks: ModelMasks, name: str, row: int) -> torch.Tensor:
        """The row's EMA (or interval mean); a row without any batch yet (in the interval, with ``accumulate``)
        keeps its mask (pruning further by magnitude inside it)."""
        weight = masks.weight(name)
        batches = self.batches.get(row, 0) if self.accumulate else int(row in self.rows_seen)
        if not batches:
            return initial_scores(weight, masks.mask(name)[row])
        score = self._ema(masks, name, weight.detach())[row]
        return score / batches if self.accumulate else score

    def after_reevaluation(self, masks: ModelMasks, rows: list[int]) -> None:
        if self.accumulate:
            for ema in self.ema.values():
                ema[rows] = 0.0
            for row in rows:
                self.batches.pop(row, None)

    def state_dict(self) -> dict:
        state = {"ema": self.ema, "rows_seen": sorted(self.rows_seen)}
        return {**state, "batches": dict(self.batches)} if self.accumulate else state

    def load_state_dict(self, state: dict) -> None:
        self.ema = dict(state["ema"])
        self.rows_seen = set(state["rows_seen"])
        self.batches = {int(row): count for row, count in state.get("batches", {}).items()}


class LearnedScores(Criterion):
    """Adam (lr ``lr``) on the straight-through gradient of the per-language scores; the score is S_l itself.

    Initialise the scores with :func:`asrprune.model.mask_scores.initial_scores` so that TopK(S_l) is the initial mask.
    """

    name = "scores"
    needs_scores = True

    def __init__(self, lr: float = 1e-2):
        self.lr = lr
        self.optimizer: torch.optim.Optimizer | None = None
        self._pending_state: dict | None = None

    def before_optimizer_step(self, masks: ModelMasks) -> None:
        if self.optimizer is None:
            self.optimizer = torch.optim.Adam(masks.score_parameters(), lr=self.lr)
            if self._pending_state is not None:
                self.optimizer.load_state_dict(self._pending_state)
        # Adam skips scores without a gradient: only the batch's language's scores move.
        self.optimizer.step()
        for _ in _take_score_gradients(masks):
            pass

    def score(self, masks: ModelMasks, name: str, row: int) -> torch.Tensor:
        return masks.scores(name, row).detach()

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict() if self.optimizer is not None else self._pending_state}

    def load_state_dict(self, state: dict) -> None:
        self._pending_state = state["optimizer"]


CRITERIA = {"magnitude": Magnitude, "saliency": Saliency, "scores": LearnedScores}


def build_criterion(name: str, options: dict | None = None) -> Criterion:
    """``name`` in :data:`CRITERIA`; ``options`` are its keyword arguments (saliency: decay; scores: lr)."""
    if name not in CRITERIA:
        raise ValueError(f"unknown mask criterion {name!r}; known: {sorted(CRITERIA)}")
    return CRITERIA[name](**(options or {}))
