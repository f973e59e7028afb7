"""The espeak-ng program as the synthetic corpus uses it: which voice variants are installed, its version, and
its reading of a text as audio.

espeak-ng runs as a subprocess (``espeak-ng --stdout`` writes a 22.05 kHz 16-bit mono WAV); phonemizer's
EspeakBackend wraps the library for phonemes only and cannot synthesise audio, so the program is called directly.
"""
from __future__ import annotations

import io
import subprocess

import numpy as np
import soundfile

from asrprune.errors import InputError

ESPEAK_SAMPLE_RATE = 22050  # Hz, of ``espeak-ng --stdout``

# espeak-ng voice variants that sound like (synthetic) people, with their gender; robots, whisper and
# croak variants are left out. Only the installed ones are used.
VOICE_VARIANTS = (
    *((f"m{n}", "male") for n in range(1, 9)),
    *((f"f{n}", "female") for n in range(1, 6)),
    ("klatt", "male"), ("klatt2", "male"), ("klatt3", "male"), ("klatt4", "male"),
    ("michel", "male"), ("miguel", "male"),
    ("anika", "female"), ("steph", "female"), ("linda", "female"), ("Andrea", "female"),
    ("belinda", "female"), ("Annie", "female"),
)


class EspeakError(InputError):
    """espeak-ng is missing, failed, or gave unusable output; the message says which and why."""


def installed_variants() -> tuple[tuple[str, str], ...]:
    """The (variant, gender) pairs of :data:`VOICE_VARIANTS` that ``espeak-ng --voices=variant`` lists."""
    listing = _run_espeak(["--voices=variant"], b"").decode("utf-8", "replace")
    installed = {word.removeprefix("!v/") for word in listing.split() if word.startswith("!v/")}
    return tuple((name, gender) for name, gender in VOICE_VARIANTS if name in installed)


def espeak_version() -> str:
    """The installed espeak-ng's version, e.g. ``1.51``."""
    words = _run_espeak(["--version"], b"").decode().split()
    return words[words.index("text-to-speech:") + 1] if "text-to-speech:" in words else " ".join(words)


def espeak_speech(text: str, voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
    """espeak-ng's reading of ``text`` with ``voice`` (e.g. ``de+m3``) at ``rate_wpm`` words per minute and
    ``pitch`` (0-99): float32 (samples,) at :data:`ESPEAK_SAMPLE_RATE` (22.05 kHz)."""
    wav = _run_espeak(["-v", voice, "-s", str(rate_wpm), "-p", str(pitch), "--stdin", "--stdout"], text.encode())
    samples, sample_rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    if sample_rate != ESPEAK_SAMPLE_RATE or samples.ndim != 1 or len(samples) == 0:
        raise EspeakError(
            f"espeak-ng {voice}: unexpected output ({sample_rate} Hz, shape {samples.shape}) for {text!r}"
        )
    return samples


def _run_espeak(arguments: list[str], stdin: bytes) -> bytes:
    """Run ``espeak-ng`` with ``arguments`` and return its stdout; raise :class:`EspeakError` with its stderr."""
    try:
        done = subprocess.run(["espeak-ng", *arguments], input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise EspeakError("espeak-ng is not installed (apt-get install espeak-ng)") from None
    if done.returncode != 0:
        raise EspeakError(
            f"espeak-ng {' '.join(arguments)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
        )
    return done.stdout
