"""Error counts for phone (PER), word (WER) and Mandarin character (CER) recognition, computed with jiwer 4.

Every scorer turns ``(references, hypotheses)`` into jiwer's Levenshtein alignment over its unit and keeps the raw
counts in an :class:`ErrorCounts`, so results of several sets add up exactly (``sum`` of counts, not an average of
rates). Empty references and hypotheses are handled as jiwer handles them: every hypothesis unit of an empty
reference is an insertion, every reference unit of an empty hypothesis a deletion.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Callable, Sequence

import jiwer

from asrprune.phonology.languages import get_language

# Text reaching the scorers is already normalised by asrprune.phonology.normalise; these only fix spacing.
_WORDS = jiwer.Compose([jiwer.RemoveMultipleSpaces(), jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
_CHARACTERS_NO_SPACE = jiwer.Compose(
    [jiwer.RemoveWhiteSpace(replace_by_space=False), jiwer.ReduceToListOfListOfChars()]
)


@dataclasses.dataclass(frozen=True)
class ErrorCounts:
    """Alignment counts over a set of utterances.

    ``ref_units`` is the number of reference units (phones, words or characters) ``N``; ``correct``,
    ``substitutions``, ``deletions`` and ``insertions`` are the alignment's H, S, D, I (``H + S + D == N``);
    ``sentence_errors`` counts utterances with at least one error. Rates are percentages.
    """

    sentences: int = 0
    sentence_errors: int = 0
    ref_units: int = 0
    correct: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def error_rate(self) -> float:
        """(S + D + I) / N * 100; 0 when there is nothing to score, ``inf`` for insertions into empty references."""
        return _percent(self.substitutions + self.deletions + self.insertions, self.ref_units)

    @property
    def correct_rate(self) -> float:
        """H / N * 100 (0 when N is 0)."""
        return _percent(self.correct, self.ref_units)

    @property
    def substitution_rate(self) -> float:
        """S / N * 100 (0 when N is 0)."""
        return _percent(self.substitutions, self.ref_units)

    @property
    def deletion_rate(self) -> float:
        """D / N * 100 (0 when N is 0)."""
        return _percent(self.deletions, self.ref_units)

    @property
    def insertion_rate(self) -> float:
        """I / N * 100 (``inf`` for insertions into empty references)."""
        return _percent(self.insertions, self.ref_units)

    @property
    def sentence_error_rate(self) -> float:
        """Utterances with any error / utterances * 100 (0 when there are none)."""
        return _percent(self.sentence_errors, self.sentences)

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        if not isinstance(other, ErrorCounts):
            return NotImplemented
        return ErrorCounts(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))


def score_phones(refs: list[Sequence[str]], hyps: list[Sequence[str]]) -> ErrorCounts:
    """Phone error counts: each utterance is a sequence of phone symbols (``["ʃ", "aː", "˥"]``)."""
    return _score("per", refs, hyps)


def score_words(refs: list[str], hyps: list[str]) -> ErrorCounts:
    """Word error counts of normalised transcripts (words separated by any amount of space)."""
    return _score("wer", refs, hyps)


def score_characters_zh(refs: list[str], hyps: list[str]) -> ErrorCounts:
    """Mandarin character error counts: all whitespace (the word segmentation) is removed, then every remaining
    character is one unit, so ``"今天 天气"`` and ``"今天天 气"`` are equal."""
    return _score("cer", refs, hyps)


def metric_for_language(lang: str) -> str:
    """``"cer"`` for Mandarin (Hanzi script), ``"wer"`` for the other supported languages."""
    return "cer" if get_language(lang).script == "hanzi" else "wer"


def alignment_text(refs: list, hyps: list, ids: Sequence[str], metric: str = "wer") -> str:
    """Human-readable alignment of every utterance (jiwer's ``REF:``/``HYP:`` lines with S/D/I marks), each under
    a ``=== <id> ===`` header. ``metric`` (``"per"``, ``"wer"``, ``"cer"``) picks the units as the scorers do;
    for ``"per"`` ``refs``/``hyps`` are phone sequences, otherwise strings."""
    if len(ids) != len(refs):
        raise ValueError(f"{len(ids)} utterance ids for {len(refs)} references")
    if not refs and not hyps:
        return ""
    text = jiwer.visualize_alignment(align(metric, refs, hyps), show_measures=False, skip_correct=False)
    return re.sub(r"^=== SENTENCE (\d+) ===$", lambda match: f"=== {ids[int(match[1]) - 1]} ===", text, flags=re.M)


def _align_phones(refs: list[Sequence[str]], hyps: list[Sequence[str]]) -> jiwer.WordOutput:
    """Phones joined by single spaces and split again by jiwer: exact because phone symbols hold no space."""
    for name, utterances in (("reference", refs), ("hypothesis", hyps)):
        for number, phones in enumerate(utterances, 1):
            if isinstance(phones, str) or any(not phone or any(c.isspace() for c in phone) for phone in phones):
                raise ValueError(f"{name} {number}: phones must be a sequence of non-empty, space-free symbols")
    return jiwer.process_words([" ".join(p) for p in refs], [" ".join(p) for p in hyps], _WORDS, _WORDS)


_ALIGNERS: dict[str, Callable[[list, list], jiwer.WordOutput | jiwer.CharacterOutput]] = {
    "per": _align_phones,
    "wer": lambda refs, hyps: jiwer.process_words(refs, hyps, _WORDS, _WORDS),
    "cer": lambda refs, hyps: jiwer.process_characters(refs, hyps, _CHARACTERS_NO_SPACE, _CHARACTERS_NO_SPACE),
}


def align(metric: str, refs: list, hyps: list) -> jiwer.WordOutput | jiwer.CharacterOutput:
    """jiwer alignment of ``refs`` against ``hyps`` in ``metric``'s units; lengths must match."""
    if metric not in _ALIGNERS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(_ALIGNERS)}")
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    return _ALIGNERS[metric](list(refs), list(hyps))


def _score(metric: str, refs: list, hyps: list) -> ErrorCounts:
    """Totals of the alignment in ``metric``'s units; an utterance is wrong when any chunk is not ``equal``.
    No utterances give zero counts (jiwer would count one empty sentence)."""
    if not refs and not hyps:
        return ErrorCounts()
    output = align(metric, refs, hyps)
    return ErrorCounts(
        sentences=len(output.references),
        sentence_errors=sum(any(chunk.type != "equal" for chunk in chunks) for chunks in output.alignments),
        ref_units=sum(len(units) for units in output.references),
        correct=output.hits,
        substitutions=output.substitutions,
        deletions=output.deletions,
        insertions=output.insertions,
    )


def _percent(part: int, whole: int) -> float:
    if whole:
        return 100.0 * part / whole
    return float("inf") if part else 0.0
