"""Transcript normalisation: the text that goes into ``text`` files and is fed to G2P.

Latin-script languages (de fr es it pl): NFC, digits written out as words (num2words), lower case, Unicode
punctuation (categories ``P*``) replaced by spaces, except that

- hyphens and dashes become spaces (``quatre-vingt`` -> ``quatre vingt``);
- apostrophes (``'``, ``’``, ``ʼ``) between two letters are kept as ``'`` in fr/it (``l'homme``,
  ``dell'acqua``); elsewhere they are deleted so that German ``geht's`` stays one word (``gehts``);
- ``% ％ ‰ & @ # §`` are kept, because they are spoken as words (``Prozent``, ``und``) and deleting them would make
  the transcript disagree with the audio; they are not letters, so the utterance is reported as untranscribable.

Mandarin (zh): NFC, punctuation (including full-width ``，。！？「」``) removed except the spoken symbols
above, Arabic digits (ASCII or full-width) written as Chinese numerals, the word-segmentation spaces of
AISHELL transcripts kept.

Numbers: each maximal run of digits is read as one cardinal number (``21`` -> ``einundzwanzig``,
``二十一``); a run with a leading zero or longer than 12 digits (codes, phone numbers) is read digit by digit.
Separators inside numbers are treated as punctuation in Latin text (``3,5`` -> ``drei fünf``); in Mandarin a
``.`` between digits is read ``点`` and ``N%`` (or full-width ``N％``) is read ``百分之N``, and a four-digit run
before ``年`` (a year) is read digit by digit (``2008年`` -> ``二零零八年``).

Whitespace is collapsed to single spaces with no leading or trailing space.
"""
from __future__ import annotations

import re
import unicodedata

from num2words import num2words

from asrprune.phonology.languages import get_language

APOSTROPHES = "'’ʼ"
SPOKEN_SYMBOLS = frozenset("%％‰&@#§")
MAX_CARDINAL_DIGITS = 12

_DIGIT_RUN = re.compile(r"\d+")
_ZH_NUMBER = re.compile(r"(\d+)(?:\.(\d+))?([%％年])?")
_ZH_DIGITS = "零一二三四五六七八九"
_ZH_SMALL_UNITS = ("", "十", "百", "千")
_ZH_GROUP_UNITS = ("", "万", "亿", "万亿")
_HAN_NAME_PREFIXES = ("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH")


def normalise_text(text: str, lang: str) -> str:
    """Return ``text`` normalised for language ``lang`` (see the module docstring for the rules)."""
    spec = get_language(lang)
    text = unicodedata.normalize("NFC", text)
    if spec.script == "hanzi":
        text = _ZH_NUMBER.sub(_zh_number_words, text)
        text = "".join(" " if _is_silent_punctuation(ch) else ch for ch in text)
    else:
        text = _DIGIT_RUN.sub(lambda m: f" {_latin_number_words(m.group(), lang)} ", text)
        text = _strip_latin_punctuation(text.lower(), spec.keeps_apostrophe)
    return unicodedata.normalize("NFC", " ".join(text.split()))


def untranscribable_characters(text: str, lang: str) -> list[str]:
    """Characters of normalised ``text`` outside ``lang``'s alphabet (for zh: not Han), sorted and unique.

    Spaces are not reported. An empty list means every character can be passed to G2P.
    """
    spec = get_language(lang)
    if spec.script == "hanzi":
        bad = {ch for ch in text if not ch.isspace() and not is_han(ch)}
    else:
        bad = {ch for ch in text if not ch.isspace() and ch not in spec.letters}
    return sorted(bad)


def is_han(char: str) -> bool:
    """True if ``char`` is a CJK unified ideograph (any extension or compatibility block) or ``〇``."""
    return char == "〇" or unicodedata.name(char, "").startswith(_HAN_NAME_PREFIXES)


def _strip_latin_punctuation(text: str, keeps_apostrophe: bool) -> str:
    """Replace punctuation in lower-cased Latin ``text`` by spaces, keeping fr/it word-internal apostrophes."""
    out = []
    for i, ch in enumerate(text):
        if ch in APOSTROPHES:
            between_letters = 0 < i < len(text) - 1 and text[i - 1].isalpha() and text[i + 1].isalpha()
            out.append("'" if keeps_apostrophe and between_letters else "")
        else:
            out.append(" " if _is_silent_punctuation(ch) else ch)
    return "".join(out)


def _is_silent_punctuation(char: str) -> bool:
    """Punctuation (Unicode ``P*``) that is not read aloud, i.e. not in ``SPOKEN_SYMBOLS``."""
    return unicodedata.category(char).startswith("P") and char not in SPOKEN_SYMBOLS


def _latin_number_words(digits: str, lang: str) -> str:
    """Spell a run of (any script's) decimal digits in ``lang`` with num2words."""
    if _read_digit_by_digit(digits):
        return " ".join(num2words(int(d), lang=lang) for d in digits)
    return num2words(int(digits), lang=lang)


def _read_digit_by_digit(digits: str) -> bool:
    return (len(digits) > 1 and int(digits[0]) == 0) or len(digits) > MAX_CARDINAL_DIGITS


def _zh_number_words(match: re.Match) -> str:
    """Chinese reading of ``N``, ``N.M``, ``N%`` or ``N年`` (the suffix matched by ``_ZH_NUMBER``)."""
    integer, fraction, suffix = match.group(1), match.group(2), match.group(3)
    year = suffix == "年" and fraction is None and len(integer) == 4
    if year or _read_digit_by_digit(integer):
        words = _zh_digit_string(integer)
    else:
        words = zh_cardinal(int(integer))
    if fraction is not None:
        words += "点" + _zh_digit_string(fraction)
    if suffix in ("%", "％"):
        return "百分之" + words
    return words + (suffix or "")


def _zh_digit_string(digits: str) -> str:
    return "".join(_ZH_DIGITS[int(d)] for d in digits)


def zh_cardinal(number: int) -> str:
    """Mandarin cardinal numeral in simplified characters for ``0 <= number < 10**16``.

    Hand-written because num2words has no Chinese; follows the standard reading: zeros inside a number are read
    once (``1005`` -> ``一千零五``), trailing zeros are silent, and a leading ``一十`` is read ``十``
    (``15`` -> ``十五``, ``150000`` -> ``十五万``).
    """
    if not 0 <= number < 10**16:
        raise ValueError(f"zh_cardinal: {number} out of range 0..10**16-1")
    if number == 0:
        return _ZH_DIGITS[0]
    groups = []
    while number:
        number, group = divmod(number, 10000)
        groups.append(group)
    words = ""
    zero_pending = False
    for position in range(len(groups) - 1, -1, -1):
        group = groups[position]
        if group == 0:
            zero_pending = bool(words)
            continue
        if words and (zero_pending or group < 1000):
            words += _ZH_DIGITS[0]
        words += _zh_group(group) + _ZH_GROUP_UNITS[position]
        zero_pending = False
    return words[1:] if words.startswith("一十") else words


def _zh_group(group: int) -> str:
    """Reading of ``1 <= group <= 9999`` with inner zeros read once and trailing zeros silent."""
    words = ""
    zero_pending = False
    for power in range(3, -1, -1):
        digit = group // 10**power % 10
        if digit == 0:
            zero_pending = bool(words)
            continue
        if zero_pending:
            words += _ZH_DIGITS[0]
        words += _ZH_DIGITS[digit] + _ZH_SMALL_UNITS[power]
        zero_pending = False
    return words
