"""Recording channels: what the microphone, the device and the upload do to a clip after the room and noise.

Per utterance, in this order (each setting drawn by :func:`draw_channel`, applied by :func:`apply_channel`):

1. band-limiting (:data:`BAND_LIMIT_SHARE` of the clips): an 8th-order Butterworth band-pass (scipy) from
   ``highpass_hz`` (a small microphone's bass roll-off) to ``lowpass_hz`` (a device that records at a low
   sample rate, a headset, a phone line);
2. clipping (:data:`CLIP_SHARE` of the clips): the clip is driven ``clip_db`` dB above full scale and cut at
   +-1, as an input level set too high does;
3. a lossy codec ``codec``: ``mp3`` (LAME through pedalboard's ``MP3Compressor`` at VBR quality
   ``mp3_vbr_quality``, LAME's -V scale: 0 best .. 10 smallest), ``gsm`` (GSM 06.10
   full-rate, the 13 kb/s 8 kHz mobile-phone codec, pedalboard's ``GSMFullRateCompressor``) or ``none``;
4. the recording level: the clip is scaled to a peak of ``peak_dbfs`` dBFS.

Seen channels (train, dev, test) use no codec or mp3; unseen ones (transfer) mp3 at quality bands no seen
clip uses. gsm is in neither default set: as a third of the training clips' codec it cost the mini model about 7
points of test PER (benchmarks/results/corpus_v2_calibration2/); a harder corpus can add it to :data:`CODECS`.
Cut-offs, clipping drive, mp3 quality and level are
:class:`asrprune.synth.conditions.Interleaved` ranges. All steps are deterministic functions of the settings.
(The Common Voice clips the corpus finally writes are an mp3 encoding on top, as real uploads are.)
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pedalboard
import scipy.signal

from asrprune.synth.conditions import SEEN, UNSEEN, Interleaved
from asrprune.synth.noise import set_peak

BAND_LIMIT_SHARE = 0.25
LOWPASS_HZ = Interleaved(3000.0, 8000.0)
HIGHPASS_HZ = Interleaved(50.0, 350.0)
FILTER_ORDER = 8
CLIP_SHARE = 0.1
CLIP_DB = Interleaved(1.0, 6.0)
CODECS = {SEEN: ("none", "mp3"), UNSEEN: ("mp3",)}
MP3_VBR_QUALITY = Interleaved(2.0, 8.0)
PEAK_DBFS = Interleaved(-26.0, -1.0)


@dataclasses.dataclass(frozen=True)
class Channel:
    """One clip's channel: cut-offs in Hz (``None``: no band-limiting), clipping drive in dB (``None``: no
    clipping), ``codec`` with its ``mp3_vbr_quality`` (``None`` unless mp3), final ``peak_dbfs``."""

    highpass_hz: float | None
    lowpass_hz: float | None
    clip_db: float | None
    codec: str
    mp3_vbr_quality: float | None
    peak_dbfs: float


def draw_channel(rng: np.random.Generator, condition: str) -> Channel:
    """A channel with ``condition``'s settings."""
    band_limited = rng.uniform() < BAND_LIMIT_SHARE
    clipped = rng.uniform() < CLIP_SHARE
    codec = str(rng.choice(CODECS[condition]))
    return Channel(
        highpass_hz=HIGHPASS_HZ.draw(rng, condition) if band_limited else None,
        lowpass_hz=LOWPASS_HZ.draw(rng, condition) if band_limited else None,
        clip_db=CLIP_DB.draw(rng, condition) if clipped else None,
        codec=codec,
        mp3_vbr_quality=MP3_VBR_QUALITY.draw(rng, condition) if codec == "mp3" else None,
        peak_dbfs=PEAK_DBFS.draw(rng, condition),
    )


def apply_channel(samples: np.ndarray, sample_rate: int, channel: Channel) -> np.ndarray:
    """``samples`` (float, (samples,), at ``sample_rate`` Hz, any level) through ``channel``; float32, same
    length, peak at ``channel.peak_dbfs``."""
    out = np.asarray(samples, dtype=np.float32)
    if channel.lowpass_hz is not None:
        out = band_limit(out, sample_rate, channel.highpass_hz, channel.lowpass_hz)
    if channel.clip_db is not None:
        out = clip(out, channel.clip_db)
    if channel.codec == "mp3":
        out = pedalboard.MP3Compressor(vbr_quality=channel.mp3_vbr_quality)(out, sample_rate)
    elif channel.codec == "gsm":
        out = pedalboard.GSMFullRateCompressor()(out, sample_rate)
    elif channel.codec != "none":
        raise ValueError(f"unknown codec {channel.codec!r}")
    return set_peak(out.reshape(-1)[: len(samples)], channel.peak_dbfs)


def band_limit(samples: np.ndarray, sample_rate: int, highpass_hz: float, lowpass_hz: float) -> np.ndarray:
    """``samples`` through a Butterworth band-pass of order :data:`FILTER_ORDER` from ``highpass_hz`` to
    ``lowpass_hz`` (Hz); float32, same length."""
    sos = scipy.signal.butter(FILTER_ORDER, [highpass_hz, lowpass_hz], btype="bandpass", fs=sample_rate, output="sos")
    return scipy.signal.sosfilt(sos, samples).astype(np.float32)


def clip(samples: np.ndarray, drive_db: float) -> np.ndarray:
    """``samples`` scaled to a peak ``drive_db`` dB above full scale, then hard-clipped to [-1, 1]; float32."""
    return np.clip(set_peak(samples, drive_db), -1.0, 1.0)
