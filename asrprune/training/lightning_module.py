"""Lightning wrapper of :class:`ConformerCTC`: CTC training, per-language dev token error rate, AdamW, one-cycle LR."""
from __future__ import annotations

from collections import defaultdict
from typing import Mapping, Sequence

import lightning as L
import torch

from asrprune.data.dataset import Batch
from asrprune.data.targets import PHONE
from asrprune.decoding.greedy import greedy_decode
from asrprune.model.conformer_ctc import ConformerCTC, ctc_loss
from asrprune.model.masks import masked_optimizer_step
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
        self.log("val/loss", loss, sync_dist=True, batch_size=len(batch.uttids))
        hyps = greedy_decode(log_probs, out_lengths)
        for i, hyp in enumerate(hyps):
            refs, hyp_list = self._dev_pairs[self.model.languages[int(batch.lang_ids[i])]]
            refs.append([str(t) for t in batch.targets[i, : batch.target_lengths[i]].tolist()])
            hyp_list.append([str(t) for t in hyp])

    def on_validation_epoch_end(self) -> None:
        total = ErrorCounts()
        for lang, (refs, hyps) in sorted(self._dev_pairs.items()):
            counts = score_phones(refs, hyps)
            self.log(f"val/per_{lang}", counts.error_rate, sync_dist=True)
            total += counts
        if total.ref_units:
            # Monitored by the checkpoint callback: the pooled dev phone error rate in percent.
            self.log("val/per", total.error_rate, prog_bar=True, sync_dist=True)
        self._dev_pairs.clear()

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
