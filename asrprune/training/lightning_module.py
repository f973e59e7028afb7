"""Lightning wrapper of :class:`ConformerCTC`: CTC training, per-language dev token error rate, AdamW, one-cycle LR."""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy, Strategy

from asrprune.data.dataset import Batch
from asrprune.data.targets import PHONE
from asrprune.decoding.greedy import greedy_decode
from asrprune.model.conformer_ctc import ConformerCTC, ctc_loss
from asrprune.model.mask_storage import masks_key
from asrprune.model.masked_optimizer import masked_optimizer_step
from asrprune.model.store import ENCODER_PREFIX, StoredModel, load_model
from asrprune.scoring.error_rates import ErrorCounts, score_phones


class CTCModule(L.LightningModule):
    """Trains a CTC conformer; everything needed to rebuild it is saved in the checkpoint's hyperparameters.

    Args:
        tokens: the token list (``<blank>`` first).
        language_tokens: tokens each language may emit; its key order fixes the language ids.
        model: keyword arguments of :class:`ConformerCTC` (besides tokens and language_tokens).
        optim: ``lr``, ``weight_decay``, ``warmup_fraction`` (share of max_steps spent warming up).
        max_steps: length of the one-cycle schedule.
        target_unit: ``"phone"`` or ``"subword"`` (:mod:`asrprune.data.targets`), recorded for decoding.
        The dev metric ``val/per`` is the token error rate: PER for phones, piece error rate for subwords.
    """

    def __init__(
        self,
        tokens: Sequence[str],
        language_tokens: Mapping[str, Sequence[str]],
        model: Mapping,
        optim: Mapping,
        max_steps: int,
        target_unit: str = PHONE,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = ConformerCTC(tokens, language_tokens, **model)
        # Dev references and greedy hypotheses per language (token ids as strings), scored at the epoch's end.
        self._dev_pairs: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
        # This rank's dev loss summed over utterances, and the utterances (pooled across ranks at the epoch's end).
        self._dev_loss = [0.0, 0]

    @classmethod
    def from_file(cls, path: str | Path, optim: Mapping | None = None, max_steps: int | None = None) -> "CTCModule":
        """The module of the model in ``path``, any kind :func:`asrprune.model.store.load_model` reads (a checkpoint,
        a masked or resized model, a compact sparse export), on the CPU; ``optim`` and ``max_steps`` replace the
        stored ones (a new optimizer and schedule for the next training). In train mode, as constructed
        (``Trainer.fit`` keeps the mode it finds); call ``.eval()`` to run it for inference."""
        stored = load_model(path)
        hparams = {**stored.hparams, **({"optim": optim} if optim is not None else {}),
                   **({"max_steps": max_steps} if max_steps is not None else {})}
        module = cls(**hparams)
        module.model.load_state_dict(stored.model.state_dict())
        return module

    def stored(self) -> StoredModel:
        """The network and its hyperparameters, as :func:`asrprune.model.store.save_model` writes them (the same
        network, not a copy)."""
        return StoredModel(self.model, dict(self.hparams))

    def setup(self, stage: str) -> None:
        """Keep the mask buffers out of DDP's per-forward buffer broadcast (runs before Lightning wraps the model).

        Every rank re-evaluates the masks from identical inputs (weights and score gradients are all-reduced,
        criteria are deterministic), so they stay identical by construction; broadcasting them (one bool per
        prunable weight and language, ~150 MB per step on the 12 x 256 model) would only cost time. BatchNorm
        statistics are still broadcast. DDP reads this private attribute (set by its own
        ``_set_params_and_buffers_to_ignore_for_model``); no public option ignores chosen buffers.
        """
        if self.model.masks is not None:
            ignored = [masks_key(ENCODER_PREFIX, name) for name in self.model.masks.names]
            torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(self, ignored)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(batch.feats, batch.feat_lengths, batch.lang_ids)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        log_probs, out_lengths = self(batch)
        loss = ctc_loss(log_probs, out_lengths, batch.targets, batch.target_lengths)
        batch_size = len(batch.uttids)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        # Per target token the loss does not depend on how long the batch's utterances are: a smoother curve.
        self.log("train/loss_per_token", loss.detach() * batch_size / batch.target_lengths.sum(), batch_size=batch_size)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        log_probs, out_lengths = self(batch)
        loss = ctc_loss(log_probs, out_lengths, batch.targets, batch.target_lengths)
        self._dev_loss[0] += float(loss) * len(batch.uttids)
        self._dev_loss[1] += len(batch.uttids)
        hyps = greedy_decode(log_probs, out_lengths)
        lang_ids = batch.lang_ids.tolist()
        for i, hyp in enumerate(hyps):
            refs, hyp_list = self._dev_pairs[self.model.languages[lang_ids[i]]]
            refs.append([str(t) for t in batch.targets[i, : batch.target_lengths[i]].tolist()])
            hyp_list.append([str(t) for t in hyp])

    def _pooled_dev_counts(self) -> tuple[dict[str, ErrorCounts], float, int]:
        """Per-language error counts, dev loss sum and utterances, summed over all ranks (one all_reduce).

        Every rank returns the same languages (those with dev utterances on any rank), so all ranks log the same
        metrics; the dev shards are disjoint (``BucketBatchSampler(even_shards=False)``), so nothing counts twice.
        """
        languages = self.model.languages
        fields = len(dataclasses.fields(ErrorCounts))
        local = torch.zeros(len(languages) * fields + 2, dtype=torch.float64)
        for lang, (refs, hyps) in self._dev_pairs.items():
            start = languages.index(lang) * fields
            local[start : start + fields] = torch.tensor(dataclasses.astuple(score_phones(refs, hyps)))
        local[-2:] = torch.tensor(self._dev_loss, dtype=torch.float64)
        # float64 holds integer counts exactly up to 2^53; gloo and NCCL both reduce it.
        pooled = self.trainer.strategy.reduce(local.to(self.device), reduce_op="sum").cpu()
        counts = {}
        for k, lang in enumerate(languages):
            values = [int(v) for v in pooled[k * fields : (k + 1) * fields].tolist()]
            if any(values):
                counts[lang] = ErrorCounts(*values)
        return counts, float(pooled[-2]), int(pooled[-1])

    def on_validation_epoch_end(self) -> None:
        counts, loss_sum, utterances = self._pooled_dev_counts()
        self._dev_pairs.clear()
        self._dev_loss = [0.0, 0]
        # The values are already pooled and equal on every rank: sync_dist averages equal numbers (exact), and
        # keeps Lightning from warning about unsynchronised epoch-level metrics.
        if utterances:
            self.log("val/loss", loss_sum / utterances, sync_dist=True)
        total = ErrorCounts()
        for lang, lang_counts in sorted(counts.items()):
            self.log(f"val/per_{lang}", lang_counts.error_rate, sync_dist=True)
            total += lang_counts
        if total.ref_units:
            # Monitored by the checkpoint callback: the pooled dev phone error rate in percent.
            self.log("val/per", total.error_rate, prog_bar=True, sync_dist=True)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        """With weight masks, a step changes only the weights of the pathways of the batches' languages."""
        step = super().optimizer_step
        if self.model.masks is None:
            step(epoch, batch_idx, optimizer, optimizer_closure)
        else:
            masked_optimizer_step(
                self.model.masks, optimizer, lambda: step(epoch, batch_idx, optimizer, optimizer_closure)
            )

    def configure_optimizers(self):
        optim = self.hparams.optim
        optimizer = torch.optim.AdamW(self.parameters(), lr=optim["lr"], weight_decay=optim["weight_decay"])
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=optim["lr"],
            total_steps=self.hparams.max_steps,
            pct_start=optim["warmup_fraction"],
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def ddp_strategy_for(module: CTCModule, strategy: str | Strategy) -> str | Strategy:
    """The Lightning strategy to train ``module`` with: ``strategy`` itself, except plain ``"ddp"`` for a model
    whose masks carry per-language scores (``model.masks.scores: true``: saliency and learned-score criteria).

    A forward pass uses one language's score parameters only, so the other languages' scores get no gradient and
    DDP must look for unused parameters (``find_unused_parameters=True``; ``static_graph`` cannot serve, the set of
    used parameters changes with the batch's language). Dense models and masks without scores use every parameter
    in every step and keep DDP's faster default. Mask buffers are kept out of DDP's broadcast by
    :meth:`CTCModule.setup`.
    """
    masks = module.model.masks
    if strategy == "ddp" and masks is not None and masks.spec["scores"]:
        return DDPStrategy(find_unused_parameters=True)
    return strategy
