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

class EspeakError(InputError):
    """espeak-ng is missing, failed, or gave unusable output; the message says which and why."""


def installed_variants() -> tuple[tuple[str, str], ...]:
    """Every (variant, gender) pair ``espeak-ng --voices=variant`` lists, in its order: the variant's file name
    (``m3``, ``klatt2``; what ``-v <lang>+<variant>`` takes) and ``male`` or ``female`` from its Age/Gender
    column (``--/M``, ``70/F``)."""
    listing = _run_espeak(["--voices=variant"], b"").decode("utf-8", "replace").splitlines()
    variants = []
    for line in listing[1:]:  # the first line is the header
        fields = line.split()
        files = [field for field in fields if field.startswith("!v/")]
        if len(fields) >= 3 and files:
            gender = "female" if fields[2].endswith("/F") else "male"
            variants.append((files[0].removeprefix("!v/"), gender))
    return tuple(variants)


def espeak_version() -> str:
    """The installed espeak-ng's version, e.g. ``1.51``."""
    words = _run_espeak(["--version"], b"").decode().split()
    return words[words.index("text-to-speech:") + 1] if "text-to-speech:" in words else " ".join(words)


def espeak_speech(text: str, voice: str, rate_wpm: int, pitch: int, ssml: bool = False) -> np.ndarray:
    """espeak-ng's reading of ``text`` with ``voice`` (e.g. ``de+m3``) at ``rate_wpm`` words per minute and
    ``pitch`` (0-99): float32 (samples,) at :data:`ESPEAK_SAMPLE_RATE` (22.05 kHz). ``ssml``: ``text`` is SSML
    (espeak-ng ``-m``), e.g. with ``<prosody rate="80%">`` spans."""
    markup = ["-m"] if ssml else []
    wav = _run_espeak(["-v", voice, "-s", str(rate_wpm), "-p", str(pitch), *markup, "--stdin", "--stdout"],
                      text.encode())
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
