"""Silence padding and additive noise for each synthetic utterance.

Per utterance (all values drawn by :func:`draw_degradation`; :func:`pad` and :func:`add_noise` apply them,
:mod:`asrprune.synth.corpus` puts the room's reverberation between the two):

1. silence padding: ``lead_silence_s`` (0.1-0.5 s) before and ``trail_silence_s`` (0.1-0.4 s) after the
   speech, as recordings start and stop a moment away from the speech;
2. additive noise of one ``kind`` over the whole clip:

   - ``white``: Gaussian, flat spectrum;
   - ``pink``: power spectral density ~ 1/f (-3 dB per octave), e.g. fans, rumble;
   - ``brown``: power ~ 1/f**2 (-6 dB per octave), low-frequency hum and wind;
   - ``blue``: power ~ f (+3 dB per octave), the hiss of a cheap preamplifier;
   - ``hum``: mains hum, a 50 or 60 Hz fundamental and its harmonics up to :data:`HUM_MAX_HZ` with
     amplitudes ~ 1/harmonic number and random phases;
   - ``crackle``: impulsive noise, clicks at random times (:data:`CRACKLE_RATE_HZ` per second) each a burst
     of Gaussian noise decaying over :data:`CRACKLE_DECAY_S`, with random amplitudes: a loose cable, a
     scratched contact;
   - ``babble``: 2-4 other utterances of the same language and split (:mod:`asrprune.synth.corpus` takes them
     from the same chunk of 100), each scaled to the same RMS level and started at a random point (wrapping
     around), summed: competing speakers in the background;

   scaled to a signal-to-noise ratio ``snr_db`` drawn uniformly from the configured range (default 10-30 dB),
   for babble from that range shifted up by ``BABBLE_SNR_OFFSET_DB`` (10 dB): background talkers of the
   same language must stay at a low level, or they become a second transcript the labels do not hold.
   SNR is clip-level, as :func:`torchaudio.functional.add_noise` defines it: energy of the padded (and
   reverberant) speech over energy of the noise over the same samples. Because the padding carries no speech,
   the SNR over the speech alone is about 1 dB higher.

Training, dev and test use :data:`SEEN_NOISE_KINDS`, the transfer split :data:`UNSEEN_NOISE_KINDS`.

The noise is generated here rather than by audiomentations (its ``AddColorNoise`` would do the colours):
audiomentations requires soxr < 1, which conflicts with the lock's soxr 1.1, and it draws from the global
``random``/``numpy.random`` state, which threads share, while every clip here must be a pure function of its
own seed whatever ``jobs`` is. No library in the lock generates hum or impulsive noise.

A :class:`Degradation` holds every random choice plus a seed for the noise samples, so an utterance's audio
is a pure function of its speech, its degradation and (for babble) the babble talkers.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import scipy.signal
import torch
import torchaudio

SEEN_NOISE_KINDS = ("white", "pink", "brown", "hum", "babble")
UNSEEN_NOISE_KINDS = ("blue", "crackle")
NOISE_KINDS = SEEN_NOISE_KINDS + UNSEEN_NOISE_KINDS
DEFAULT_SNR_DB = (10.0, 30.0)
LEAD_SILENCE_S = (0.1, 0.5)
TRAIL_SILENCE_S = (0.1, 0.4)
BABBLE_TALKERS = (2, 4)
BABBLE_SNR_OFFSET_DB = 10.0
HUM_MAINS_HZ = (50.0, 60.0)
HUM_MAX_HZ = 2000.0
CRACKLE_RATE_HZ = (2.0, 20.0)
CRACKLE_DECAY_S = 0.002

# Amplitude spectrum exponents: |X(f)| ~ f**-exponent gives power ~ f**(-2 * exponent).
_SPECTRAL_EXPONENT = {"white": 0.0, "pink": 0.5, "brown": 1.0, "blue": -0.5}


@dataclasses.dataclass(frozen=True)
class Degradation:
    """The random choices for one utterance; durations in seconds, SNR in dB, ``noise_seed`` seeds the noise."""

    kind: str
    snr_db: float
    lead_silence_s: float
    trail_silence_s: float
    noise_seed: int


def draw_degradation(
    rng: np.random.Generator,
    snr_db: tuple[float, float] = DEFAULT_SNR_DB,
    kinds: Sequence[str] = NOISE_KINDS,
) -> Degradation:
    """Draw one utterance's noise kind (uniform over ``kinds``), SNR (uniform in ``snr_db``, plus
    ``BABBLE_SNR_OFFSET_DB`` for babble) and padding."""
    check_noise_settings(snr_db, kinds)
    kind = str(kinds[int(rng.integers(len(kinds)))])
    offset = BABBLE_SNR_OFFSET_DB if kind == "babble" else 0.0
    return Degradation(
        kind=kind,
        snr_db=float(rng.uniform(*snr_db)) + offset,
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


def pad(speech: np.ndarray, sample_rate: int, degradation: Degradation) -> np.ndarray:
    """``speech`` (float, (samples,), at ``sample_rate`` Hz) with the degradation's leading and trailing
    silence; float32."""
    lead = np.zeros(round(degradation.lead_silence_s * sample_rate), dtype=np.float32)
    trail = np.zeros(round(degradation.trail_silence_s * sample_rate), dtype=np.float32)
    return np.concatenate([lead, np.asarray(speech, dtype=np.float32), trail])


def add_noise(
    speech: np.ndarray,
    sample_rate: int,
    degradation: Degradation,
    babble_talkers: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """``speech`` (float, (samples,), at ``sample_rate`` Hz) plus the degradation's noise at its SNR; float32,
    same shape. ``babble_talkers`` (clean utterances at ``sample_rate``, any lengths) are needed for kind
    ``babble`` only."""
    rng = np.random.default_rng(degradation.noise_seed)
    if degradation.kind == "babble":
        noise = babble_noise(babble_talkers, len(speech), rng)
    elif degradation.kind == "hum":
        noise = hum_noise(len(speech), sample_rate, rng)
    elif degradation.kind == "crackle":
        noise = crackle_noise(len(speech), sample_rate, rng)
    else:
        noise = colored_noise(degradation.kind, len(speech), rng)
    return mix_at_snr(speech, noise, degradation.snr_db)


def colored_noise(kind: str, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of colour ``white``/``pink``/``brown``/``blue``, float32 (num_samples,), unit RMS.

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


def hum_noise(num_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum (see the module docstring) at ``sample_rate`` Hz, float32 (num_samples,), unit RMS."""
    fundamental = HUM_MAINS_HZ[int(rng.integers(len(HUM_MAINS_HZ)))]
    harmonics = np.arange(1, int(min(HUM_MAX_HZ, sample_rate / 2) // fundamental) + 1)
    phases = rng.uniform(0, 2 * np.pi, len(harmonics))
    time_s = np.arange(num_samples) / sample_rate
    hum = (np.sin(2 * np.pi * fundamental * np.outer(time_s, harmonics) + phases) / harmonics).sum(axis=1)
    return _unit_rms(hum, "hum")


def crackle_noise(num_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Impulsive clicks (see the module docstring) at ``sample_rate`` Hz, float32 (num_samples,), unit RMS;
    at least one click."""
    rate_hz = rng.uniform(*CRACKLE_RATE_HZ)
    clicks = max(1, int(rng.poisson(rate_hz * num_samples / sample_rate)))
    impulses = np.zeros(num_samples)
    impulses[rng.integers(num_samples, size=clicks)] = rng.standard_normal(clicks) * rng.lognormal(0.0, 1.0, clicks)
    burst_length = int(5 * CRACKLE_DECAY_S * sample_rate)
    burst = rng.standard_normal(burst_length) * np.exp(-np.arange(burst_length) / (CRACKLE_DECAY_S * sample_rate))
    return _unit_rms(scipy.signal.oaconvolve(impulses, burst)[:num_samples], "crackle")


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
