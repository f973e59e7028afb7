"""Grapheme-to-phoneme conversion of normalised words with espeak-ng (via phonemizer) and pypinyin.

Latin-script languages: the unique words go to espeak in one ``EspeakBackend.phonemize`` call, one word per
input line; phonemizer returns exactly one output line per input line, which is how each pronunciation is
matched to its word. Words that espeak reads as English come back without language flags
(``language_switch='remove-flags'``) in English phones.

Mandarin: each word is converted to tone-numbered pinyin by pypinyin (``Style.TONE3``, neutral tone ``5``,
pypinyin's tone sandhi applied inside the word, so ``你好`` -> ``ni2 hao3``, matching both speakers and espeak's
own synthesis). The unique syllables go to espeak's ``cmn-latn-pinyin`` voice in one call; each syllable's
phones are followed by the Chao tone letters of its pinyin tone (:func:`asrprune.phonology.segments.tone_letters`),
because espeak's IPA prints tone 1 and tone 4 alike.

All returned phones are panphon-known NFD tokens (see :mod:`asrprune.phonology.segments`).
"""
from __future__ import annotations

import dataclasses
import re
from functools import lru_cache
from typing import Iterable

from phonemizer.backend import EspeakBackend
from phonemizer.logger import get_logger
from phonemizer.separator import Separator
from pypinyin import Style, lazy_pinyin

from asrprune.phonology.languages import get_language
from asrprune.phonology.segments import ipa_to_segments, tone_letters

_PINYIN_SYLLABLE = re.compile(r"([a-z]+)([1-5])")
_WORD_SEPARATOR = Separator(phone=None, word=" ", syllable=None)


@dataclasses.dataclass
class G2PResult:
    """Pronunciations of the words that could be converted and, for the others, why not.

    ``lexicon`` maps word -> phone tokens (at least one); ``failures`` maps word -> reason.
    """

    lexicon: dict[str, tuple[str, ...]]
    failures: dict[str, str]


def words_to_phones(words: Iterable[str], lang: str) -> G2PResult:
    """Pronounce each distinct word of ``words`` (normalised text, no spaces) in language ``lang``.

    A word espeak or pypinyin cannot pronounce is reported in ``failures``; a phone symbol that panphon does
    not know raises :class:`asrprune.phonology.segments.UnknownPhoneError`.
    """
    spec = get_language(lang)
    unique = list(dict.fromkeys(words))
    failures = {word: "empty word or word with whitespace" for word in unique if word.split() != [word]}
    candidates = [word for word in unique if word not in failures]
    if spec.script == "hanzi":
        lexicon = _mandarin_words(candidates, failures)
    else:
        lexicon = _latin_words(candidates, lang, failures)
    return G2PResult(lexicon=lexicon, failures=failures)


@lru_cache(maxsize=None)
def _backend(voice: str) -> EspeakBackend:
    return EspeakBackend(
        voice,
        preserve_punctuation=False,
        with_stress=False,
        language_switch="remove-flags",
        logger=get_logger(verbosity="quiet"),
    )


def _phonemize(items: list[str], voice: str) -> list[str]:
    """espeak IPA for each item (one phonemizer call); raises RuntimeError if the line counts disagree."""
    if not items:
        return []
    ipa = _backend(voice).phonemize(items, separator=_WORD_SEPARATOR, strip=True, njobs=1)
    if len(ipa) != len(items):
        raise RuntimeError(f"phonemizer ({voice}) returned {len(ipa)} lines for {len(items)} words")
    return ipa


def _latin_words(words: list[str], lang: str, failures: dict[str, str]) -> dict[str, tuple[str, ...]]:
    lexicon = {}
    for word, ipa in zip(words, _phonemize(words, get_language(lang).espeak_voice)):
        phones = ipa_to_segments(ipa, word=word, lang=lang)
        if phones:
            lexicon[word] = tuple(phones)
        else:
            failures[word] = f"espeak gave no phones (output {ipa!r})"
    return lexicon


def _mandarin_words(words: list[str], failures: dict[str, str]) -> dict[str, tuple[str, ...]]:
    syllables_of = {}
    for word in words:
        syllables = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True, tone_sandhi=True)
        unreadable = [syllable for syllable in syllables if not _PINYIN_SYLLABLE.fullmatch(syllable)]
        if unreadable:
            failures[word] = f"no pinyin for {''.join(unreadable)!r}"
        else:
            syllables_of[word] = syllables
    unique_syllables = sorted({syllable for syllables in syllables_of.values() for syllable in syllables})
    ipa_of = dict(zip(unique_syllables, _phonemize(unique_syllables, get_language("zh").espeak_voice)))
    phones_of = {}
    for syllable in unique_syllables:
        phones = ipa_to_segments(ipa_of[syllable], word=syllable, lang="zh")
        if phones:
            phones_of[syllable] = tuple(phones) + tone_letters(int(syllable[-1]))
    lexicon = {}
    for word, syllables in syllables_of.items():
        silent = [syllable for syllable in syllables if syllable not in phones_of]
        if silent:
            failures[word] = f"espeak gave no phones for pinyin {' '.join(silent)}"
        else:
            lexicon[word] = sum((phones_of[syllable] for syllable in syllables), ())
    return lexicon
