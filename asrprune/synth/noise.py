"""The acoustic degradation applied to each clean synthetic utterance.

Noise model, per utterance (all values drawn by :func:`draw_degradation`, then applied by :func:`degrade`):

1. silence padding: ``lead_silence_s`` (0.1-0.5 s) before and ``trail_silence_s`` (0.1-0.4 s) after the
   espeak output, as recordings start and stop a moment away from the speech;
2. additive noise of one ``kind`` over the whole padded clip:

   - ``white``: Gaussian, flat spectrum;
   - ``pink``: power spectral density ~ 1/f (-3 dB per octave), e.g. fans, rumble;
   - ``brown``: power ~ 1/f**2 (-6 dB per octave), low-frequency hum and wind;
   - ``babble``: 2-4 other utterances of the same language and split (:mod:`asrprune.synth.corpus` takes them from
     the same chunk of 100), each scaled to the same RMS level and started at a random point (wrapping
     around), summed: competing speakers in the background;

   scaled to a signal-to-noise ratio ``snr_db`` drawn uniformly from the configured range (default 5-25 dB),
   for babble from that range shifted up by ``BABBLE_SNR_OFFSET_DB`` (10 dB): background talkers of the
   same language must stay at a low level, or they become a second transcript the labels do not hold.
   SNR is clip-level, as :func:`torchaudio.functional.add_noise` defines it: energy of the padded clean
   signal over energy of the noise over the same samples. Because the padding carries no speech, the SNR
   over the speech alone is about 1 dB higher;
3. random gain: the mix is scaled so its peak lies at ``peak_dbfs`` (uniform in -20..-1 dBFS), which both
   varies the recording level and keeps every sample inside [-1, 1] (no clipping).

A :class:`Degradation` holds every random choice plus a seed for the noise samples, so an utterance's audio
is a pure function of its clean speech, its degradation and (for babble) the babble talkers.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch
import torchaudio

NOISE_KINDS = ("white", "pink", "brown", "babble")
DEFAULT_SNR_DB = (5.0, 25.0)
LEAD_SILENCE_S = (0.1, 0.5)
TRAIL_SILENCE_S = (0.1, 0.4)
PEAK_DBFS = (-20.0, -1.0)
BABBLE_TALKERS = (2, 4)
BABBLE_SNR_OFFSET_DB = 10.0

# Amplitude spectrum exponents: |X(f)| ~ f**-exponent gives power ~ f**(-2 * exponent).
_SPECTRAL_EXPONENT = {"white": 0.0, "pink": 0.5, "brown": 1.0}


@dataclasses.dataclass(frozen=True)
class Degradation:
    """The random choices for one utterance; durations in seconds, levels in dB, ``noise_seed`` seeds the noise."""

    kind: str
    snr_db: float
    peak_dbfs: float
    lead_silence_s: float
    trail_silence_s: float
    noise_seed: int


def draw_degradation(
    rng: np.random.Generator,
    snr_db: tuple[float, float] = DEFAULT_SNR_DB,
    kinds: Sequence[str] = NOISE_KINDS,
) -> Degradation:
    """Draw one utterance's noise kind (uniform over ``kinds``), SNR (uniform in ``snr_db``, plus
    ``BABBLE_SNR_OFFSET_DB`` for babble), gain and padding."""
    check_noise_settings(snr_db, kinds)
    kind = str(kinds[int(rng.integers(len(kinds)))])
    offset = BABBLE_SNR_OFFSET_DB if kind == "babble" else 0.0
    return Degradation(
        kind=kind,
        snr_db=float(rng.uniform(*snr_db)) + offset,
        peak_dbfs=float(rng.uniform(*PEAK_DBFS)),
        lead_silence_s=float(rng.uniform(*LEAD_SILENCE_S)),
        trail_silence_s=float(rng.uniform(*TRAIL_SILENCE_S)),
        noise_seed=int(rng.integers(2**63)),
    )


def check_noise_settings(snr_db: tuple[float, float], kinds: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``snr_db`` is a (low, high) range and ``kinds`` a non-empty subset of
    :data:`NOISE_KINDS`."""
    unknown = sorted(set(kinds) - set(NOISE_KINDS))
    if unknown or not kinds:
        raise ValueError(f"noise kinds must be a non-empty subset of {NOISE_KINDS}, got {list(kinds)}")
    if len(snr_db) != 2 or snr_db[0] > snr_db[1]:
        raise ValueError(f"SNR range must be (low, high) dB with low <= high, got {tuple(snr_db)}")


def degrade(
    speech: np.ndarray,
    sample_rate: int,
    degradation: Degradation,
    babble_talkers: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """Pad, add noise to and level clean ``speech`` (float, shape (samples,)); returns float32 (padded samples,).

    ``babble_talkers`` (clean utterances at ``sample_rate``, any lengths) are needed for kind ``babble`` only.
    """
    lead = np.zeros(round(degradation.lead_silence_s * sample_rate), dtype=np.float32)
    trail = np.zeros(round(degradation.trail_silence_s * sample_rate), dtype=np.float32)
    padded = np.concatenate([lead, np.asarray(speech, dtype=np.float32), trail])
    rng = np.random.default_rng(degradation.noise_seed)
    if degradation.kind == "babble":
        noise = babble_noise(babble_talkers, len(padded), rng)
    else:
        noise = colored_noise(degradation.kind, len(padded), rng)
    return set_peak(mix_at_snr(padded, noise, degradation.snr_db), degradation.peak_dbfs)


def colored_noise(kind: str, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of colour ``white``/``pink``/``brown``, float32 (num_samples,), unit RMS.

    Hand-written spectral shaping (scale the FFT of white noise by f**-exponent) because neither numpy,
    torchaudio nor the installed packages generate coloured noise. The DC bin is zeroed (no offset).
    """
    if kind not in _SPECTRAL_EXPONENT:
        raise ValueError(f"unknown noise colour {kind!r}; known: {sorted(_SPECTRAL_EXPONENT)}")
    if num_samples < 2:
        raise ValueError(f"noise needs at least 2 samples, got {num_samples}")
    exponent = _SPECTRAL_EXPONENT[kind]
    if exponent == 0.0:
        return _unit_rms(rng.standard_normal(num_samples), f"{kind} noise")
    # Shape a power-of-two length (FFTs of lengths with large prime factors are many times slower), then cut.
    fft_length = 1 << (num_samples - 1).bit_length()
    spectrum = np.fft.rfft(rng.standard_normal(fft_length))
    frequencies = np.fft.rfftfreq(fft_length)  # cycles per sample; bin 0 is DC
    spectrum[1:] *= frequencies[1:] ** -exponent
    spectrum[0] = 0.0
    return _unit_rms(np.fft.irfft(spectrum, fft_length)[:num_samples], f"{kind} noise")


def babble_noise(talkers: Sequence[np.ndarray], num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of ``talkers`` (each scaled to unit RMS, repeated to ``num_samples`` and started at a random offset),
    scaled to unit RMS; float32 (num_samples,)."""
    if not talkers:
        raise ValueError("babble noise needs at least one talker")
    mix = np.zeros(num_samples, dtype=np.float64)
    for number, talker in enumerate(talkers):
        looped = np.resize(_unit_rms(talker, f"babble talker {number}"), num_samples)
        mix += np.roll(looped, int(rng.integers(num_samples)))
    return _unit_rms(mix, "babble mix")


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech`` plus ``noise`` scaled to ``snr_db`` (energy ratio over the whole arrays); float32, same shape."""
    if speech.shape != noise.shape:
        raise ValueError(f"speech {speech.shape} and noise {noise.shape} differ in shape")
    mixed = torchaudio.functional.add_noise(
        torch.as_tensor(speech, dtype=torch.float32)[None],
        torch.as_tensor(noise, dtype=torch.float32)[None],
        torch.tensor([snr_db], dtype=torch.float32),
    )
    return mixed[0].numpy()


def set_peak(samples: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """``samples`` scaled so that max |sample| = 10 ** (peak_dbfs / 20); float32, same shape."""
    peak = float(np.max(np.abs(samples)))
    if peak == 0.0:
        raise ValueError("cannot set the level of an all-zero signal")
    return (samples * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32)


def _unit_rms(samples: np.ndarray, what: str) -> np.ndarray:
    """``samples`` divided by their RMS, as float32; ``what`` names the signal in the error for silence."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    if rms == 0.0:
        raise ValueError(f"{what} is silent (RMS 0)")
    return (samples / rms).astype(np.float32)
