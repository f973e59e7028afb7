"""What the synthetic speakers say: random sentences from each language's most frequent words.

Vocabulary: ``wordfreq.top_n_list(lang, top_n)`` (lower-cased words, most frequent first), keeping a word only if

- it is made of the language's letters (:data:`asrprune.phonology.languages.LANGUAGES`; for zh: all Han
  characters), which removes digits, ``°``, abbreviations with dots and foreign letters;
- it is not a single letter, unless it is a real one-letter word of the language (:data:`ONE_LETTER_WORDS`:
  French ``à``, Polish ``w``, ...); wordfreq splits elisions, so the list holds fragments like French ``l``/``d``;
- it is not an elision fragment of two or more letters (:data:`ELISION_FRAGMENTS`: French ``qu``, Italian
  ``dell``), which never stand alone in text;
- espeak-ng reads it with the language's own rules: words the voice would switch to another language for
  (English loans such as ``facebook``, ``team``) are dropped, because the audio would then come from an
  English voice while the corpus claims the language;
- for zh: pypinyin gives every character a tone-numbered syllable.

wordfreq folds case (German nouns come lower-case and ``ß`` as ``ss``: ``strasse``); the sentences keep that.

Sampling: each word of a sentence is drawn independently with probability proportional to
``frequency ** freq_exponent``. With the default 0.5 and wordfreq's roughly Zipfian lists (frequency ~ 1/rank),
the weight falls as rank**-0.5 instead of rank**-1: the 3000th word is ~55 times rarer than the first instead of
~3000 times, and about 30 % of the drawn words come from the less frequent half of the list, so dev and test
sets hold both frequent and rarer words. Sentence length is uniform in ``words_per_sentence``
(default 3-10 words, zh 3-8); sentences are unique within a language. Latin-script sentences start with a
capital and end with a period, like Common Voice text (the importers' normaliser removes both); Mandarin
sentences are words joined by spaces, like AISHELL transcripts.

All randomness comes from the ``numpy.random.Generator`` passed in, so a seed fixes the sentences.
"""
from __future__ import annotations

import collections
import dataclasses
import re
from typing import Collection

import numpy as np
import wordfreq
from phonemizer.backend import EspeakBackend
from pypinyin import Style, lazy_pinyin

from asrprune.phonology.languages import get_language
from asrprune.phonology.normalise import is_han

DEFAULT_TOP_N = 3000
DEFAULT_FREQ_EXPONENT = 0.5
DEFAULT_WORDS_PER_SENTENCE = {"zh": (3, 8)}
LATIN_WORDS_PER_SENTENCE = (3, 10)

# Letters that are words on their own (articles, prepositions, conjunctions, verb forms); every other single
# letter in a wordfreq list is an elided article/pronoun (fr ``l'``, it ``c'``) or a symbol/abbreviation.
ONE_LETTER_WORDS = {
    "de": frozenset(),
    "fr": frozenset({"a", "à", "y"}),
    "es": frozenset({"a", "e", "o", "u", "y"}),
    "it": frozenset({"a", "e", "è", "i", "o"}),
    "pl": frozenset({"a", "i", "o", "u", "w", "z"}),
}
# Longer elided forms that wordfreq's tokenizer cuts off before an apostrophe (``qu'il`` -> ``qu`` ``il``,
# ``dell'anno`` -> ``dell`` ``anno``); written text never has them without the apostrophe and next word.
ELISION_FRAGMENTS = {
    "fr": frozenset({"qu", "jusqu", "lorsqu", "puisqu", "quelqu", "presqu", "quoiqu", "aujourd"}),
    "it": frozenset({"dell", "nell", "all", "dall", "sull", "coll", "quell", "quest", "anch", "tutt", "senz"}),
}
MAX_DRAWS_PER_SENTENCE = 100  # attempts per requested sentence before giving up on finding unique ones

_PINYIN_SYLLABLE = re.compile(r"[a-zü]+[1-5]")


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """The words of one language that sentences are drawn from.

    ``words`` are most frequent first; ``probabilities`` (same length, sums to 1) are the sampling weights
    ``frequency ** freq_exponent``, normalised; ``dropped`` counts the wordfreq words left out, by reason.
    """

    lang: str
    words: tuple[str, ...]
    probabilities: np.ndarray
    dropped: dict[str, int]


def build_vocabulary(lang: str, top_n: int = DEFAULT_TOP_N, freq_exponent: float = DEFAULT_FREQ_EXPONENT) -> Vocabulary:
    """Filter ``wordfreq.top_n_list(lang, top_n)`` as the module docstring describes and weight the survivors."""
    spec = get_language(lang)
    if top_n < 1:
        raise ValueError(f"top_n must be positive, got {top_n}")
    candidates = wordfreq.top_n_list(lang, top_n)
    dropped: collections.Counter[str] = collections.Counter()
    kept = []
    for word in candidates:
        reason = _rejection_reason(word, lang, spec.script, spec.letters)
        if reason:
            dropped[reason] += 1
        else:
            kept.append(word)
    if spec.script == "latin":
        foreign = _read_as_other_language(kept, spec.espeak_voice)
        dropped["read by espeak as another language"] = len(foreign)
        kept = [word for word in kept if word not in foreign]
    if not kept:
        raise ValueError(f"{lang}: none of wordfreq's top {top_n} words is usable ({dict(dropped)})")
    # The raw frequency table, not word_frequency(): that re-tokenises each word (with jieba for zh, not installed).
    frequencies = wordfreq.get_frequency_dict(lang)
    weights = np.array([frequencies[word] for word in kept]) ** freq_exponent
    return Vocabulary(lang, tuple(kept), weights / weights.sum(), dict(dropped))


def make_sentences(
    vocabulary: Vocabulary,
    count: int,
    rng: np.random.Generator,
    words_per_sentence: tuple[int, int] | None = None,
    exclude: Collection[tuple[str, ...]] = frozenset(),
) -> list[tuple[str, ...]]:
    """Draw ``count`` distinct sentences, each a tuple of words, ``words_per_sentence`` = (min, max) inclusive,
    none of them in ``exclude``.

    Raises ``ValueError`` if the vocabulary cannot give ``count`` distinct sentences within
    ``MAX_DRAWS_PER_SENTENCE * count`` draws.
    """
    low, high = words_per_sentence or default_words_per_sentence(vocabulary.lang)
    if not 1 <= low <= high:
        raise ValueError(f"words_per_sentence must satisfy 1 <= min <= max, got ({low}, {high})")
    sentences: dict[tuple[str, ...], None] = {}  # insertion-ordered set
    for _ in range(MAX_DRAWS_PER_SENTENCE * count):
        if len(sentences) == count:
            break
        length = int(rng.integers(low, high + 1))
        indices = rng.choice(len(vocabulary.words), size=length, p=vocabulary.probabilities)
        sentence = tuple(vocabulary.words[i] for i in indices)
        if sentence not in exclude:
            sentences.setdefault(sentence, None)
    if len(sentences) < count:
        raise ValueError(
            f"{vocabulary.lang}: only {len(sentences)} distinct sentences of {low}-{high} words from "
            f"{len(vocabulary.words)} words; {count} requested"
        )
    return list(sentences)


def restrict_vocabulary(vocabulary: Vocabulary, words: Collection[str]) -> Vocabulary:
    """``vocabulary`` with only those of its words that are in ``words``, probabilities renormalised (the
    transfer test split draws from the words of the other splits, so every word it holds is in the lexicon the
    importer builds from them). Raises ``ValueError`` if none is left."""
    keep = np.array([word in words for word in vocabulary.words])
    if not keep.any():
        raise ValueError(f"{vocabulary.lang}: none of the {len(vocabulary.words)} vocabulary words is among "
                         f"the {len(words)} given")
    probabilities = vocabulary.probabilities[keep]
    return Vocabulary(vocabulary.lang, tuple(np.array(vocabulary.words, dtype=object)[keep]),
                      probabilities / probabilities.sum(), vocabulary.dropped)


def default_words_per_sentence(lang: str) -> tuple[int, int]:
    """Default (min, max) sentence length in words for ``lang``."""
    return DEFAULT_WORDS_PER_SENTENCE.get(lang, LATIN_WORDS_PER_SENTENCE)


def written_sentence(words: tuple[str, ...], lang: str) -> str:
    """The sentence as the corpus writes it: ``Das ist gut.`` (Latin script) or ``今天 天气 很 好`` (zh)."""
    text = " ".join(words)
    if get_language(lang).script == "hanzi":
        return text
    return text[:1].upper() + text[1:] + "."


def espeak_text(words: tuple[str, ...], lang: str) -> str:
    """The text handed to espeak-ng for ``lang``'s voice.

    Latin script: :func:`written_sentence` (the period gives a falling final intonation). zh: tone-numbered
    pinyin for the ``cmn-latn-pinyin`` voice, which reads Hanzi badly but pinyin well; each word is converted
    on its own so pypinyin picks the reading of polyphonic characters from its phrase dictionary, and its
    syllables are joined (``中国 人`` -> ``zhong1guo2 ren2``).
    """
    if get_language(lang).script == "hanzi":
        return " ".join("".join(_pinyin(word)) for word in words)
    return written_sentence(words, lang)


def _pinyin(word: str) -> list[str]:
    """Tone-numbered pinyin syllables of a Chinese word (``ü`` written ``v``, neutral tone ``5``)."""
    return lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True)


def _rejection_reason(word: str, lang: str, script: str, letters: frozenset[str]) -> str:
    """Why ``word`` is not usable ('' if it is); the checks that need no espeak call."""
    if script == "hanzi":
        if not all(is_han(ch) for ch in word):
            return "not all Han characters"
        syllables = _pinyin(word)
        if len(syllables) != len(word) or not all(_PINYIN_SYLLABLE.fullmatch(s) for s in syllables):
            return "no pinyin reading"
        return ""
    if not set(word) <= letters or word.startswith("'") or word.endswith("'"):
        return "characters outside the alphabet"
    if len(word) == 1 and word not in ONE_LETTER_WORDS[lang]:
        return "single letter that is no word"
    if word in ELISION_FRAGMENTS.get(lang, ()):
        return "elision fragment"
    return ""


def _read_as_other_language(words: list[str], espeak_voice: str) -> set[str]:
    """The words that espeak-ng's ``espeak_voice`` reads by switching to another language's voice.

    phonemizer with ``language_switch='keep-flags'`` marks such words as ``(en)...(de)``; one call for all words.
    """
    backend = EspeakBackend(espeak_voice, language_switch="keep-flags")
    phonemes = backend.phonemize(words, strip=True)
    return {word for word, ipa in zip(words, phonemes) if "(" in ipa}
