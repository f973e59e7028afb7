"""The agent's reward signal: how far a pruned model's outputs move from the original's, without training data.

Data-free inputs (:func:`synthetic_features`) are drawn from the model's own CMVN statistics: random spectral
shapes smoothed across mel bins, held for phone-like segments of 3-12 frames, with a slowly varying loudness, then
scaled by the stored per-bin mean and standard deviation. No audio, transcript or feature of any corpus is read.
:func:`calibration_features` is the optional alternative: real filterbanks of a few utterances of a data directory
(no transcripts). It is **not data-free**, and results obtained with it must say so.
"""
from __future__ import annotations

from pathlib import Path

import torch

from asrprune.data.feature_cache import FeatureCache
from asrprune.data.features import FbankConfig
from asrprune.data.kaldi_dir import read_data_dir


def _smooth(x: torch.Tensor, dim: int, sigma: float) -> torch.Tensor:
    """Gaussian smoothing of ``x`` along ``dim`` (kernel radius 3 sigma, replicate padding)."""
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1)
    moved = x.movedim(dim, -1)
    flat = moved.reshape(-1, 1, moved.shape[-1])
    flat = torch.nn.functional.pad(flat, (radius, radius), mode="replicate")
    return torch.nn.functional.conv1d(flat, kernel).reshape(moved.shape).movedim(-1, dim)


def synthetic_features(mean: torch.Tensor, std: torch.Tensor, utterances: int = 8, frames: int = 400,
                       seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Speech-like random filterbanks (utterances, frames, F) and lengths (utterances,) from CMVN ``mean``/``std``
    (F,) only. Each utterance is a sequence of segments of 3-12 frames with a spectral shape smoothed over mel
    bins (sigma 3 bins), a loudness contour smoothed over 20 frames, light frame noise, standardised per bin."""
    g = torch.Generator().manual_seed(seed)
    bins = mean.numel()
    out = torch.empty(utterances, frames, bins)
    for u in range(utterances):
        segments = []
        while sum(len(s) for s in segments) < frames:
            length = int(torch.randint(3, 13, (1,), generator=g))
            shape = _smooth(torch.randn(bins, generator=g), 0, 3.0)
            segments.append(shape.expand(length, bins))
        z = torch.cat(segments)[:frames]
        z = _smooth(z, 0, 1.0) + 0.3 * torch.randn(frames, bins, generator=g)
        z = z + 2.0 * _smooth(torch.randn(frames, generator=g), 0, 20.0)[:, None]
        out[u] = z
    out = (out - out.mean(dim=(0, 1))) / out.std(dim=(0, 1))
    return mean + std * out, torch.full((utterances,), frames, dtype=torch.long)


def calibration_features(data_dir: str | Path, num_mel_bins: int, utterances: int = 8,
                         max_frames: int = 600) -> tuple[torch.Tensor, torch.Tensor]:
    """NOT DATA-FREE: filterbanks (utterances, T, F) and lengths of the first ``utterances`` utterances of a Kaldi
    data directory (transcripts unused), each cut to ``max_frames``."""
    utts = read_data_dir(data_dir)[:utterances]
    if not utts:
        raise ValueError(f"{data_dir}: no utterances for calibration")
    cache = FeatureCache(None, FbankConfig(num_mel_bins))
    feats = [cache.features(u)[:max_frames] for u in utts]
    lengths = torch.tensor([len(f) for f in feats])
    return torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), lengths


class OutputDistortion:
    """Mean per-frame KL divergence KL(original || pruned) of the CTC posteriors (nats) on fixed inputs.

    Args:
        reference: the original :class:`ConformerCTC` (eval mode); feats (B, T, F), lengths (B,): the inputs. Each
        utterance is scored as language ``b % num_languages`` so every language's token restriction (and, with
        per-language masks, its pathway) is used. Batches are single-language (one forward per language), so a
        model with per-language masks is checked on each of its pathways.
    """

    def __init__(self, reference, feats: torch.Tensor, lengths: torch.Tensor):
        self.feats, self.lengths = feats, lengths
        lang_ids = torch.arange(len(feats)) % len(reference.languages)
        # (language id, long indices of its utterances), one single-language batch per language that has any.
        self.batches = [(k, (lang_ids == k).nonzero().squeeze(1)) for k in lang_ids.unique().tolist()]
        self.order = torch.cat([utts for _, utts in self.batches]).argsort()  # batch order -> input order
        self.reference, self.mask = self._outputs(reference)

    def _outputs(self, model) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities (B, T', V) of every utterance (in input order) and the bool (B, T') valid frames."""
        with torch.inference_mode():
            model.eval()
            outputs = [model(self.feats[utts], self.lengths[utts], torch.full((len(utts),), lang_id))
                       for lang_id, utts in self.batches]
        log_probs = torch.cat([log_probs for log_probs, _ in outputs])[self.order]
        out_lengths = torch.cat([out_lengths for _, out_lengths in outputs])[self.order]
        mask = torch.arange(log_probs.shape[1])[None, :] < out_lengths[:, None]
        return log_probs, mask

    def __call__(self, model) -> float:
        log_probs, _ = self._outputs(model)
        kl = (self.reference.exp() * (self.reference - log_probs)).sum(dim=-1)
        return float(kl[self.mask].mean())
