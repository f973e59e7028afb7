"""Reading audio files (wav, flac, mp3) as 16 kHz mono float32.

soundfile (libsndfile >= 1.1) decodes MP3 itself, so CommonVoice clips need no FFmpeg; torchaudio's
polyphase resampler converts 48/32/22.05 kHz to 16 kHz.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile
import torch
import torchaudio

from asrprune.errors import InputError

SAMPLE_RATE = 16000
# libsndfile says this for any file it cannot open, also for an existing file that is corrupt or in a format it
# does not know; the callers have checked that the file exists, so it is replaced by what it means here.
_LIBSNDFILE_CANNOT_OPEN = "File does not exist or is not a regular file"


class AudioReadError(InputError):
    """An audio file is missing, unreadable or empty; the message names the file and why."""


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Return the file's audio as a float32 array of shape (samples,) at ``sample_rate`` Hz, channels averaged."""
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioReadError(f"{path}: empty file (0 bytes)")
    return decode_audio(path, str(path), sample_rate)


def load_audio_bytes(data: bytes, name: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Like :func:`load_audio` for encoded audio held in memory; errors name ``name`` (e.g. a dataset row)."""
    if not data:
        raise AudioReadError(f"{name}: empty file (0 bytes)")
    return decode_audio(io.BytesIO(data), name, sample_rate)


def decode_audio(source: Path | BinaryIO, name: str, sample_rate: int) -> np.ndarray:
    """Decode ``source`` (a path or a binary file object) to mono float32 (samples,) at ``sample_rate`` Hz."""
    try:
        samples, file_rate = soundfile.read(source, dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises LibsndfileError, RuntimeError or TypeError by format
        # LibsndfileError's error_string omits the object's address that str() holds for in-memory files.
        reason = str(getattr(err, "error_string", err))
        if reason.startswith(_LIBSNDFILE_CANNOT_OPEN):
            reason = "corrupt, truncated or not an audio format libsndfile reads"
        raise AudioReadError(f"{name}: cannot decode audio ({reason})") from None
    if samples.shape[0] == 0:
        raise AudioReadError(f"{name}: no samples")
    mono = samples.mean(axis=1)
    if file_rate != sample_rate:
        mono = torchaudio.functional.resample(torch.from_numpy(mono), file_rate, sample_rate).numpy()
    return np.ascontiguousarray(mono, dtype=np.float32)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write float samples in [-1, 1] as 16-bit PCM wav, via a temporary file so a crash leaves no partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    soundfile.write(str(tmp), np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    tmp.replace(path)
