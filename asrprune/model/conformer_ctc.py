"""The shared multilingual acoustic model: global CMVN, SpecAugment, ESPnet ConformerEncoder, phone CTC output.

The batch's language ids enter :meth:`ConformerCTC.forward`; they select which tokens a language may emit
(``restrict_to_language_tokens``) and, when weight masks are attached (:mod:`asrprune.model.mask_registry`), the
language's mask row (pathway) for that forward pass only; language-specific output layers hook in at the same place.
The model maps a language to its mask row (:meth:`ConformerCTC.mask_row`) and says whether its batches must be
single-language (:attr:`ConformerCTC.needs_single_language_batches`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from asrprune.model.dropout import use_uniform_mask_dropout
from asrprune.model.conformer_layout import resize_encoder, resize_subsampling
from asrprune.model.espnet_modules import ConformerEncoder, SpecAug
from asrprune.model.mask_registry import ModelMasks
from asrprune.model.output_layers import build_output_layer

# Logit of tokens a language may not emit. Finite on purpose: PyTorch's CTC backward turns -inf inputs into NaN
# gradients, while exp(-1e4) is exactly 0 in float32, so the probabilities are the same as with -inf.
MASKED_LOGIT = -1.0e4

DEFAULT_ENCODER = {
    "output_size": 144,
    "attention_heads": 4,
    "linear_units": 576,
    "num_blocks": 4,
    "cnn_module_kernel": 15,
    "macaron_style": True,
    "rel_pos_type": "latest",
    "pos_enc_layer_type": "rel_pos",
    "selfattention_layer_type": "rel_selfattn",
    "activation_type": "swish",
    "input_layer": "conv2d",
    "dropout_rate": 0.1,
    "positional_dropout_rate": 0.1,
    "attention_dropout_rate": 0.1,
}


class GlobalCMVN(nn.Module):
    """(x - mean) / std with fixed statistics stored as buffers.

    ESPnet's GlobalMVN reads its statistics from a file at construction; keeping them as plain buffers makes a
    checkpoint self-contained.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Normalise feats (B, T, F)."""
        return (feats - self.mean) / self.std


class ConformerCTC(nn.Module):
    """CTC conformer over a shared token list (IPA phones, or subword pieces).

    Args:
        tokens: token list, ``<blank>`` first.
        language_tokens: for each language the tokens it may emit (its key order defines the language ids).
        num_mel_bins: input feature dimension.
        encoder: keyword arguments of ESPnet's ``ConformerEncoder`` (merged over :data:`DEFAULT_ENCODER`).
        specaug: keyword arguments of ESPnet's ``SpecAug``, or None to disable it.
        output_layer: output layer config (``{"type": "flat"}``).
        restrict_to_language_tokens: if True a language's logits outside its tokens are :data:`MASKED_LOGIT`.
        subsampling_channels: output channels of both Conv2d layers of the 4x subsampling front end, or None for
            ESPnet's choice (``output_size``). 64 instead of the mini model's 144 trains 1.03-1.12x faster per step
            (1.24x together with no encoder dropout) at the same dev PER (benchmarks/results/training_budget/).
        encoder_widths: per-layer widths that differ from the encoder config (written by structured pruning,
            :mod:`asrprune.pruning.autodfp`), applied by :func:`asrprune.model.conformer_layout.resize_encoder`; None
            keeps the config's widths.
        masks: mask spec (:data:`asrprune.model.mask_registry.SPEC_DEFAULTS`) to build the model with masked prunable
            weights (all ones until set), or None for a dense model. Checkpoints of masked models record it.
    """

    def __init__(
        self,
        tokens: Sequence[str],
        language_tokens: Mapping[str, Sequence[str]],
        num_mel_bins: int = 80,
        encoder: Mapping | None = None,
        specaug: Mapping | None = None,
        output_layer: Mapping | None = None,
        restrict_to_language_tokens: bool = True,
        subsampling_channels: int | None = None,
        encoder_widths: Mapping | None = None,
        masks: Mapping | None = None,
    ):
        super().__init__()
        self.tokens = list(tokens)
        self.languages = list(language_tokens)
        self.cmvn = GlobalCMVN(num_mel_bins)
        self.specaug = SpecAug(**specaug) if specaug else None
        self.encoder = ConformerEncoder(num_mel_bins, **{**DEFAULT_ENCODER, **(encoder or {})})
        if subsampling_channels:
            resize_subsampling(self.encoder, (subsampling_channels, subsampling_channels))
        if encoder_widths:
            resize_encoder(self.encoder, encoder_widths)
        use_uniform_mask_dropout(self.encoder)  # the same dropout, its CPU mask drawn faster (model/dropout.py)
        self.output_layer = build_output_layer(
            output_layer or {"type": "flat"}, self.tokens, self.encoder.output_size()
        )
        self.restrict_to_language_tokens = restrict_to_language_tokens
        self.register_buffer("language_token_mask", self._language_token_mask(language_tokens), persistent=False)
        self.masks: ModelMasks | None = None
        if masks:
            self.attach_masks(masks)

    def attach_masks(self, spec: Mapping) -> ModelMasks:
        """Mask the encoder's prunable weights (all-ones masks, one per language or one shared; see ``masks``)."""
        if self.masks is not None:
            raise ValueError("this model already has masks")
        self.masks = ModelMasks.attach(self.encoder, len(self.languages), spec)
        return self.masks

    @property
    def needs_single_language_batches(self) -> bool:
        """Whether every batch must hold one language: per-language masks use one pathway per forward pass."""
        return self.masks is not None and self.masks.state.per_language

    def mask_row(self, language: str | int) -> int:
        """The mask row serving ``language`` (its code or its id, an index into :attr:`languages`): the language's
        own row with per-language masks, the shared row 0 otherwise."""
        lang_id = self.languages.index(language) if isinstance(language, str) else int(language)
        if not 0 <= lang_id < len(self.languages):
            raise ValueError(f"language id {lang_id}: the model has {len(self.languages)} languages")
        return lang_id if self.needs_single_language_batches else 0

    def _batch_mask_row(self, lang_ids: torch.Tensor) -> int:
        """The mask row of a batch (lang_ids long (B,)). Per-language masks read ``lang_ids`` on the host (one
        device-to-host copy per forward on a GPU) and need a single-language batch."""
        if not self.needs_single_language_batches:
            return 0
        ids = set(lang_ids.tolist())
        if len(ids) != 1:
            raise ValueError(f"per-language masks (pathways) need single-language batches; this batch has language "
                             f"ids {sorted(ids)}")
        return self.mask_row(ids.pop())

    def _language_token_mask(self, language_tokens: Mapping[str, Sequence[str]]) -> torch.Tensor:
        """Bool (num_languages, V): which tokens each language may emit (blank always)."""
        index = {tok: i for i, tok in enumerate(self.tokens)}
        mask = torch.zeros(len(language_tokens), len(self.tokens), dtype=torch.bool)
        mask[:, 0] = True
        for row, (lang, tokens) in enumerate(language_tokens.items()):
            missing = [t for t in tokens if t not in index]
            if missing:
                raise ValueError(f"language {lang}: tokens {missing[:5]} are not in the token list")
            mask[row, [index[t] for t in tokens]] = True
        return mask

    def adapt_tokens(self, tokens: Sequence[str], language_tokens: Mapping[str, Sequence[str]]) -> None:
        """Serve a new token list and language set in place, e.g. to add a language unseen in training.

        The encoder is untouched; the output layer is rebuilt by its ``with_tokens`` (JoinAP layers recompute their
        phonological vectors and keep the learned maps; the flat layer keeps the rows of shared tokens and gives new
        tokens untrained rows).
        """
        self.output_layer = self.output_layer.with_tokens(tokens)
        self.tokens = list(tokens)
        self.languages = list(language_tokens)
        device = self.language_token_mask.device
        self.language_token_mask = self._language_token_mask(language_tokens).to(device)

    def forward(
        self, feats: torch.Tensor, feat_lengths: torch.Tensor, lang_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC log-probabilities.

        Args:
            feats: float (B, T, F) filterbanks; feat_lengths: long (B,); lang_ids: long (B,) indices into
                :attr:`languages`.
        Returns:
            log_probs float32 (B, T', V) with T' ~ T / 4 (conv2d subsampling), and out_lengths long (B,).
        """
        x = self.cmvn(feats)
        if self.training and self.specaug is not None:
            x, feat_lengths = self.specaug(x, feat_lengths)
        if self.masks is None:
            hidden, out_lengths, _ = self.encoder(x, feat_lengths)
        else:
            with self.masks.selected(self._batch_mask_row(lang_ids), record=self.training and torch.is_grad_enabled()):
                hidden, out_lengths, _ = self.encoder(x, feat_lengths)
        logits = self.output_layer(hidden).float()
        if self.restrict_to_language_tokens:
            allowed = self.language_token_mask[lang_ids].unsqueeze(1)  # (B, 1, V)
            logits = logits.masked_fill(~allowed, MASKED_LOGIT)
        return logits.log_softmax(dim=-1), out_lengths


def ctc_loss(
    log_probs: torch.Tensor, out_lengths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor
) -> torch.Tensor:
    """Mean over the batch of the per-utterance CTC loss (nats); log_probs (B, T, V), targets (B, L) padded -1."""
    loss = nn.functional.ctc_loss(
        log_probs.transpose(0, 1),
        targets.clamp_min(0),
        out_lengths,
        target_lengths,
        blank=0,
        reduction="sum",
        zero_infinity=True,
    )
    return loss / log_probs.shape[0]
