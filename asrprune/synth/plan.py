"""What the synthetic corpus plans before it renders anything: its speakers and its utterances.

Plain records, kept apart from :mod:`asrprune.synth.corpus` (which makes them) so that
:mod:`asrprune.synth.layouts` (which names and indexes the clips they describe) can use them without importing
the generator.
"""
from __future__ import annotations

import dataclasses

from asrprune.synth import channels, noise, voices


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: ``speaker_id`` (``S0001``), its ``split``, espeak ``variant``, base ``rate_wpm``
    (words per minute) and ``pitch`` (0-99), voice ``shape`` (Praat), and the Common Voice metadata it shows."""

    speaker_id: str
    split: str
    variant: str
    gender: str
    age: str
    rate_wpm: int
    pitch: int
    shape: voices.VoiceShape
    client_id: str


@dataclasses.dataclass(frozen=True)
class PlannedUtterance:
    """Everything needed to make one clip: ``index`` in its split, ``clip`` path relative to the language root,
    ``rate_spans`` ((words, rate factor), ...), ``voice_seed`` (Praat's), ``room`` (index in the split's
    condition's room bank, ``None`` for a dry clip), ``babble_sources`` (indices in the same split) for babble
    noise, Common Voice votes."""

    split: str
    index: int
    speaker: Speaker
    words: tuple[str, ...]
    rate_wpm: int
    pitch: int
    rate_spans: tuple[tuple[int, float], ...]
    voice_seed: int
    room: int | None
    degradation: noise.Degradation
    channel: channels.Channel
    babble_sources: tuple[int, ...]
    clip: str
    up_votes: int
    down_votes: int
