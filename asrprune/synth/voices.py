"""Synthetic speakers' voices beyond espeak-ng's own knobs.

- Voice variants: every installed espeak-ng variant that sounds like a person (robots, whispers and effect
  voices are left out: :data:`EFFECT_VARIANTS`), the klatt ones included, split into disjoint pools
  (:func:`variant_pools`): one for the train speakers, one for dev, and one held-out pool whose variants speak
  both test splits (:data:`SPLIT_POOL`). Variants whose names differ only in a trailing number (``m1``..``m8``,
  ``iven``..``iven4``) are one family and go to one pool, so no split hears a near-copy of another split's
  voice. The pools are the same for every language: the corpus trains one multilingual model, and a voice heard
  in one language's training set is not unseen in another's test set.
- Why the test and transfer splits share their variants: how hard a variant is to recognise varies far more
  between variants (per-variant PER 9-31 % on one model, calibration 4 of the corpus) than the recording
  conditions the transfer split changes, and with eight speakers per split the luck of which families land in
  which pool decided the transfer ratio (1.48 in one draw, 1.16 in the next). Both test splits' voices are unseen
  in training either way; the transfer split's speaker ``k`` reads with test speaker ``k``'s variant but its own
  vocal tract, intonation and rate spans from the bands training never uses, in unseen rooms, channels and noise,
  so the ratio of the two measures those settings and not a draw of variants.
- Vocal tract and pitch contour per speaker (:class:`VoiceShape`), applied with Praat's "Change gender"
  (praat-parselmouth): formants scaled by a ratio (a shorter or longer vocal tract) and the pitch contour's
  excursions around its median scaled by a factor (flatter or livelier intonation).
- Speaking rate within an utterance (:func:`draw_rate_spans`): the sentence is read in 1-3 spans of words,
  each at its own rate relative to the utterance's, with espeak-ng SSML ``<prosody rate>``.

The continuous settings are :class:`asrprune.synth.conditions.Interleaved` ranges: the transfer split draws
from the bands training never uses.
"""
from __future__ import annotations

import dataclasses
import re
import threading
from typing import Mapping, Sequence
from xml.sax.saxutils import escape

import numpy as np
import parselmouth

from asrprune.synth.conditions import Interleaved

# Variants (file names) that do not sound like a person: robots, whispers, a croak, a demon, a PA announcer,
# espeak's speed-test voice, and "Mr" (its file name holds a space, so ``<lang>+Mr`` does not load it).
EFFECT_VARIANTS = frozenset({
    *(f"robosoft{n}" for n in ("", 2, 3, 4, 5, 6, 7, 8)), "UniRobot", "anikaRobot",
    "whisper", "whisperf", "croak", "Demonic", "announcer", "fast", "Mr",
})
POOL_SHARES = {"train": 0.6, "dev": 0.1, "held_out": 0.3}  # of the usable variants, by pool
SPLIT_POOL = {"train": "train", "dev": "dev", "test": "held_out", "transfer": "held_out"}  # whose variants speak
FORMANT_SHIFT_RATIO = Interleaved(0.85, 1.20)  # Praat "Change gender" formant shift ratio (1 = unchanged)
PITCH_RANGE_FACTOR = Interleaved(0.5, 1.7)  # scales the pitch contour around its median (1 = unchanged)
RATE_SPAN_FACTOR = Interleaved(0.75, 1.30)  # a span's speaking rate relative to the utterance's
MAX_RATE_SPANS = 3
PITCH_FLOOR_HZ = 60.0  # Praat's pitch analysis range for espeak-ng voices
PITCH_CEILING_HZ = 600.0
MAX_PRAAT_SEED = 2**31 - 1
# Praat's random numbers (its overlap-add resynthesis draws some) come from one process-wide generator: seeding it
# and using it must not interleave between threads.
_PRAAT_RANDOM = threading.Lock()


@dataclasses.dataclass(frozen=True)
class VoiceShape:
    """A speaker's vocal tract (``formant_shift_ratio``, formant frequencies times this) and intonation
    (``pitch_range_factor``, the pitch contour's distance from its median times this)."""

    formant_shift_ratio: float
    pitch_range_factor: float


def variant_family(name: str) -> str:
    """``Gene2`` -> ``gene``, ``m1`` -> ``m``: the name without a trailing number; but each Klatt voice
    (``klatt``, ``klatt2``, ...) is a family of its own. The Klatt voices are espeak-ng's second synthesiser
    (formant synthesis after Klatt) with different parameter sets, not variants of one speaker: kept together they
    put a whole synthesiser into one split (calibration 3 drew all of them into the transfer pool, where they and
    the other unseen voices made its PER 1.48x the test split's), so the transfer split measured an unseen
    synthesiser rather than unseen speakers."""
    lowered = name.lower()
    return lowered if lowered.startswith("klatt") else re.sub(r"\d+$", "", lowered)


def variant_pools(
    variants: Sequence[tuple[str, str]], rng: np.random.Generator, shares: Mapping[str, float] = POOL_SHARES
) -> dict[str, tuple[tuple[str, str], ...]]:
    """Split the usable (variant, gender) pairs of ``variants`` into one pool per key of ``shares``, whole
    families at a time and each gender on its own (a family's gender is its variants' majority; espeak-ng has
    far fewer female variants than male ones, and an unstratified draw can leave a split without any): per
    gender, largest families first (ties in random order), each to a random pool drawn with probability
    proportional to how many variants of that gender the pool still lacks for its share. Raises ``ValueError``
    if a pool stays empty."""
    families: dict[str, list[tuple[str, str]]] = {}
    for name, gender in variants:
        if name not in EFFECT_VARIANTS:
            families.setdefault(variant_family(name), []).append((name, gender))
    by_gender: dict[str, list[str]] = {}
    for family, members in families.items():
        genders = [gender for _, gender in members]
        by_gender.setdefault(max(sorted(set(genders)), key=genders.count), []).append(family)
    pools: dict[str, list[tuple[str, str]]] = {split: [] for split in shares}
    splits = list(shares)
    tie_break = dict(zip(sorted(families), rng.permutation(len(families))))
    for gender in sorted(by_gender):
        group = by_gender[gender]
        targets = np.array([shares[split] for split in splits]) * sum(len(families[f]) for f in group)
        taken = np.zeros(len(splits))
        for family in sorted(group, key=lambda f: (-len(families[f]), tie_break[f])):
            lacking = np.maximum(targets - taken, 0) + 1e-9
            pick = int(rng.choice(len(splits), p=lacking / lacking.sum()))
            pools[splits[pick]].extend(families[family])
            taken[pick] += len(families[family])
    empty = [split for split, pool in pools.items() if not pool]
    if empty:
        raise ValueError(f"{len(families)} voice variant families are too few for a pool per split ({empty} empty)")
    return {split: tuple(pool) for split, pool in pools.items()}


def draw_voice_shape(rng: np.random.Generator, condition: str) -> VoiceShape:
    """A speaker's vocal tract and intonation from ``condition``'s bands."""
    return VoiceShape(
        formant_shift_ratio=FORMANT_SHIFT_RATIO.draw(rng, condition),
        pitch_range_factor=PITCH_RANGE_FACTOR.draw(rng, condition),
    )


def bounded_pitch_range_factor(sound: parselmouth.Sound, factor: float) -> float:
    """``factor``, lowered where needed so that "Change gender" keeps ``sound``'s lowest pitch at or above
    :data:`PITCH_FLOOR_HZ`. Praat widens the pitch contour on a log scale around its median: a point at ``f`` Hz
    goes to ``median * (f / median) ** factor``. A voice that dips far below its median (a creaky phrase end)
    then reaches a few tens of Hz, and there Praat's overlap-add resynthesis never returns (an Italian f3 clip with
    median 229 Hz and lowest 81 Hz hung at factor 1.58 and finished at 1.55, while holding Python's GIL, so the
    whole synthesis stopped). The pitch analysis is Praat's own, with the floor, ceiling and time step (0.8 /
    floor) that "Change gender" uses."""
    if factor <= 1.0:
        return factor
    pitch = sound.to_pitch(time_step=0.8 / PITCH_FLOOR_HZ, pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ)
    voiced = pitch.selected_array["frequency"]
    voiced = voiced[voiced > 0]
    if voiced.size == 0:
        return factor
    median, lowest = float(np.median(voiced)), float(voiced.min())
    if lowest >= median:  # a flat contour: widening moves nothing
        return factor
    return min(factor, max(1.0, float(np.log(median / PITCH_FLOOR_HZ) / np.log(median / lowest))))


def change_voice(speech: np.ndarray, sample_rate: int, shape: VoiceShape, seed: int) -> np.ndarray:
    """``speech`` (float, (samples,), at ``sample_rate`` Hz) through Praat's "Change gender" with ``shape``'s
    formant shift ratio and pitch range factor (bounded by :func:`bounded_pitch_range_factor`), pitch median and
    duration unchanged; float32, same length.
    Praat's random numbers are seeded with ``seed`` (0 .. :data:`MAX_PRAAT_SEED`), so the result is a function
    of the arguments.

    "Change gender" resynthesises around the pitch median its own pitch analysis finds, which is undefined for a
    clip without voiced frames by that analysis (silence, noise-like or very breathy speech; Praat then stops with
    "the real value --undefined-- cannot be represented in an integer"): such a clip is returned unchanged, as it
    has no voice to reshape. Praat reports that case only as a :class:`parselmouth.PraatError`, so the error is
    what is checked."""
    sound = parselmouth.Sound(np.asarray(speech, dtype=np.float64), sampling_frequency=sample_rate)
    with _PRAAT_RANDOM:
        parselmouth.praat.run(f"random_initializeWithSeedUnsafelyButPredictably ({int(seed)})")
        try:
            changed = parselmouth.praat.call(
                sound, "Change gender", PITCH_FLOOR_HZ, PITCH_CEILING_HZ, shape.formant_shift_ratio, 0.0,
                bounded_pitch_range_factor(sound, shape.pitch_range_factor), 1.0,
            )
        except parselmouth.PraatError as error:
            if "--undefined--" not in str(error):
                raise
            return np.asarray(speech, dtype=np.float32)
    return changed.values[0, : len(speech)].astype(np.float32)


def draw_rate_spans(rng: np.random.Generator, words: int, condition: str) -> tuple[tuple[int, float], ...]:
    """Cut an utterance of ``words`` words into 1-3 spans (uniform, at most one per word) at random word
    boundaries: ((words in the span, rate factor), ...), the factors from ``condition``'s bands."""
    spans = int(rng.integers(1, min(MAX_RATE_SPANS, words) + 1))
    cuts = sorted(int(c) for c in rng.choice(np.arange(1, words), spans - 1, replace=False))
    lengths = np.diff([0, *cuts, words])
    return tuple((int(n), RATE_SPAN_FACTOR.draw(rng, condition)) for n in lengths)


def rate_ssml(text: str, spans: Sequence[tuple[int, float]]) -> str:
    """``text`` (words separated by single spaces) as espeak-ng SSML, each span's words in a
    ``<prosody rate="P%">`` element (P its factor in percent)."""
    words = text.split(" ")
    if sum(n for n, _ in spans) != len(words):
        raise ValueError(f"spans {spans} do not cover the {len(words)} words of {text!r}")
    parts, start = [], 0
    for count, factor in spans:
        parts.append(f'<prosody rate="{round(100 * factor)}%">{escape(" ".join(words[start:start + count]))}</prosody>')
        start += count
    return "<speak>" + " ".join(parts) + "</speak>"
