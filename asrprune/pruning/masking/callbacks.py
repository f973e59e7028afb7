"""The Lightning callback that drives adaptive masking: masks re-evaluated every ΔT steps on a sparsity schedule."""
from __future__ import annotations

import lightning as L
import torch

from asrprune.model.mask_scores import swap_limited_topk, topk_mask
from asrprune.pruning.masking.criteria import Criterion
from asrprune.pruning.masking.schedule import SparsitySchedule


RANKINGS = ("tensor", "global")
ADJUST_STARTS = ("zero", "weight")  # where a pruned weight's adjusted value starts (ModelMasks.apply_adjusted)


class AdaptiveMasking(L.Callback):
    """Every ``interval`` optimizer steps up to ``stop_step``, re-select each mask row as the top (1 - s(t)) of the
    criterion's scores, per prunable tensor by default (uniform layer-wise sparsity: exact per tensor, no layer
    collapses at 90 %, and gradient-based scores of different layers are not on one scale) or, with ``ranking:
    global``, by one ranking over all prunable tensors of the row (PARP's global L1 re-prune: the row's overall
    sparsity is exact, the per-tensor sparsities follow the scores). After ``stop_step`` the masks are fixed, so the
    run ends by fine-tuning a stable sub-network.

    Churn control (:func:`asrprune.model.mask_scores.swap_limited_topk`, per ranking pool: one tensor of a row, or
    the whole row with global ranking): ``margin`` (a candidate must beat a kept weight's score by margin × |score|)
    and ``max_swap_fraction`` (at most that fraction of the pool's kept weights swapped per re-evaluation).
    With masks attached with ``adjust``, the adjusted values move after each re-evaluation
    (:meth:`asrprune.model.mask_registry.ModelMasks.apply_adjusted`).

    Args:
        criterion: see :mod:`asrprune.pruning.masking.criteria`.
        schedule: sparsity per step.
        interval: ΔT, optimizer steps between re-evaluations.
        stop_step: last step at which masks may change.
        rows: mask rows (language ids; 0 for a shared mask) to re-evaluate; None = all (e.g. only a new language's
            pathway while few-shot fine-tuning it).
        ranking: ``tensor`` (top-k per prunable tensor) or ``global`` (one top-k over the row's tensors).
        margin: relative score margin a candidate needs over a kept weight to displace it (0: none).
        max_swap_fraction: cap on swaps per re-evaluation and ranking pool, a fraction of the weights kept (1: none).
        adjust_restart: with ``adjust`` masks, where a pruned weight's adjusted value restarts: ``zero`` (PARP) or
            ``weight`` (θ).

    ``history`` (saved with the checkpoint) lists per re-evaluation the step, the sparsity and, per row, how many
    weights were pruned and how many regrew (kept now, masked before).
    """

    def __init__(
        self,
        criterion: Criterion,
        schedule: SparsitySchedule,
        interval: int,
        stop_step: int,
        rows: list[int] | None = None,
        ranking: str = "tensor",
        margin: float = 0.0,
        max_swap_fraction: float = 1.0,
        adjust_restart: str = "zero",
    ):
        if interval < 1:
            raise ValueError(f"adaptive masking: interval must be >= 1 step, got {interval}")
        if ranking not in RANKINGS:
            raise ValueError(f"adaptive masking: ranking must be one of {RANKINGS}, got {ranking!r}")
        if margin < 0 or not 0.0 <= max_swap_fraction <= 1.0:
            raise ValueError(f"adaptive masking: need margin >= 0 and max_swap_fraction in [0, 1], got {margin}, "
                             f"{max_swap_fraction}")
        self.ranking = ranking
        self.margin = margin
        self.max_swap_fraction = max_swap_fraction
        if adjust_restart not in ADJUST_STARTS:
            raise ValueError(f"adaptive masking: adjust_restart must be one of {ADJUST_STARTS}, got {adjust_restart!r}")
        self.adjust_restart = adjust_restart
        self.criterion = criterion
        self.schedule = schedule
        self.interval = interval
        self.stop_step = stop_step
        self.rows = rows
        self.history: list[dict] = []

    @staticmethod
    def _masks(pl_module):
        masks = pl_module.model.masks
        if masks is None:
            raise ValueError("adaptive masking needs a model with masks (model.masks in the checkpoint)")
        return masks

    def on_fit_start(self, trainer, pl_module) -> None:
        masks = self._masks(pl_module)
        if self.criterion.needs_scores and masks.spec["scores"] is False:
            raise ValueError(f"criterion {self.criterion.name!r} needs masks attached with scores: true")

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.criterion.before_optimizer_step(self._masks(pl_module))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.interval == 0 and step <= self.stop_step:
            self.reevaluate(pl_module, step)

    @torch.no_grad()
    def reevaluate(self, pl_module, step: int) -> dict:
        masks = self._masks(pl_module)
        sparsity = self.schedule.at(step)
        rows = self.rows if self.rows is not None else range(masks.state.num_masks)
        record = {"step": step, "sparsity": sparsity, "rows": {}}
        # Counts stay on the masks' device until one read per re-evaluation (one host synchronisation instead of
        # two per weight and row: ~1,300 on the 12 x 256 model with 5 languages).
        before = {name: masks.mask(name).clone() for name in masks.names} if masks.state.adjust else None
        counts = []
        for row in rows:
            regrown = pruned = 0
            for name, new in self._select(masks, row, sparsity).items():
                old = masks.mask(name)[row]
                regrown = regrown + (new & ~old).sum()
                pruned = pruned + (old & ~new).sum()
                masks.set_row(row, {name: new})
            counts.append(torch.stack([regrown, pruned]))
        for row, (regrown, pruned) in zip(rows, torch.stack(counts).tolist()):
            record["rows"][row] = {"regrown": regrown, "pruned": pruned}
        if before is not None:
            masks.apply_adjusted(before, rows, self.adjust_restart)
        self.criterion.after_reevaluation(masks, list(rows))
        self.history.append(record)
        pl_module.log("mask/sparsity", sparsity)
        return record

    def _select(self, masks, row: int, sparsity: float) -> dict:
        """The new masks of row ``row`` at ``sparsity``, by name (every name's score is read before any is set)."""
        scores = {name: self.criterion.score(masks, name, row) for name in masks.names}
        plain = self.margin == 0 and self.max_swap_fraction >= 1.0
        if self.ranking == "tensor":
            if plain:  # the re-evaluation of runs before churn control existed, bit for bit
                return {name: topk_mask(score, sparsity) for name, score in scores.items()}
            return {name: swap_limited_topk(score, masks.mask(name)[row], round(score.numel() * (1.0 - sparsity)),
                                            self.margin, self.max_swap_fraction) for name, score in scores.items()}
        flat = torch.cat([score.detach().float().flatten() for score in scores.values()])
        old = torch.cat([masks.mask(name)[row].flatten() for name in scores])
        keep = round(flat.numel() * (1.0 - sparsity))
        chosen = swap_limited_topk(flat, old, keep, self.margin, self.max_swap_fraction)
        return {name: part.view_as(score) for (name, score), part in
                zip(scores.items(), chosen.split([score.numel() for score in scores.values()]))}

    def state_dict(self) -> dict:
        return {"criterion": self.criterion.state_dict(), "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.criterion.load_state_dict(state["criterion"])
        self.history = list(state["history"])
