"""Acoustic features: Kaldi-compatible log-mel filterbanks, speed perturbation and global CMVN statistics."""
from __future__ import annotations

import dataclasses

import torch
import torchaudio

from asrprune.data.audio import SAMPLE_RATE


@dataclasses.dataclass(frozen=True)
class FbankConfig:
    """Filterbank settings (Kaldi defaults as in icefall/ESPnet: 25 ms frames every 10 ms)."""

    num_mel_bins: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0


def compute_fbank(waveform: torch.Tensor, config: FbankConfig = FbankConfig()) -> torch.Tensor:
    """Log-mel filterbank of a 16 kHz waveform.

    Args:
        waveform: float tensor (samples,) in [-1, 1].
    Returns:
        float tensor (frames, num_mel_bins), frames = 1 + (samples - 400) // 160 for the defaults.
    """
    # Kaldi's fbank works on 16-bit sample values; scaling keeps its energy floor meaningful.
    return torchaudio.compliance.kaldi.fbank(
        waveform.unsqueeze(0) * 32768.0,
        num_mel_bins=config.num_mel_bins,
        frame_length=config.frame_length_ms,
        frame_shift=config.frame_shift_ms,
        dither=0.0,
        sample_frequency=SAMPLE_RATE,
    )


def speed_perturb(waveform: torch.Tensor, factor: float) -> torch.Tensor:
    """Play ``waveform`` (samples,) ``factor`` times faster (tempo and pitch change, like sox ``speed``).

    ESPnet/Kaldi's 0.9/1.0/1.1 speed perturbation: resampling by 1/factor and reading the result at the
    original rate. Returns (round(samples / factor),) samples.
    """
    if factor == 1.0:
        return waveform
    hundredths = round(factor * 100)
    return torchaudio.functional.resample(waveform, orig_freq=hundredths, new_freq=100)


class CMVNAccumulator:
    """Running per-dimension sums of features, for global mean and variance normalisation."""

    def __init__(self, dim: int):
        self.count = 0
        self.sum = torch.zeros(dim, dtype=torch.float64)
        self.sum_square = torch.zeros(dim, dtype=torch.float64)

    def add(self, feats: torch.Tensor) -> None:
        """Add features of one utterance, shape (frames, dim)."""
        feats = feats.double()
        self.count += feats.shape[0]
        self.sum += feats.sum(0)
        self.sum_square += (feats * feats).sum(0)

    def mean_std(self, floor: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation, each float32 (dim,)."""
        if self.count == 0:
            raise ValueError("no frames were accumulated for CMVN statistics")
        mean = self.sum / self.count
        var = (self.sum_square / self.count - mean * mean).clamp_min(floor * floor)
        return mean.float(), var.sqrt().float()
