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

Numbers are read the way each language writes them, and a number whose reading is not certain makes
:func:`normalise_text` raise :class:`UnreadableNumber` (the importers drop the utterance with that reason), because
a guessed reading is a wrong reference that no model can match. A run of digits is read as one cardinal
(``21`` -> ``einundzwanzig``, ``二十一``); a run with a leading zero or longer than 12 digits (codes, phone
numbers) is read digit by digit (``007`` -> ``null null sieben``).

de fr es it pl write a decimal comma and group thousands with a point or a space (also no-break U+00A0, narrow
no-break U+202F and thin U+2009 spaces; French and Polish use the spaces, German, Spanish and Italian the point):

==================  =================================================  ======================================
written             read                                               why
==================  =================================================  ======================================
``1.234``           one thousand two hundred thirty-four               a point before three digits groups
``12 000``          twelve thousand                                    a space before three digits groups
``1.234,5``         ``eintausendzweihundertvierunddreißig komma fünf``  decimal comma, one fractional digit
``3,14``            dropped                                            speakers read ``14`` digit by digit or
                                                                       as fourteen (``drei Komma vierzehn``)
``1.5`` ``13.30``   dropped                                            a point not grouping three digits: a
``1.5.2020``                                                           date, a time or an English decimal
``1,234`` (es)      dropped                                            Spain: decimal comma; Latin America
                                                                       (Common Voice has both): 1234
``3. Mai`` (de pl)  dropped                                            a point after a number followed by
                                                                       more text marks an ordinal (``dritte``)
                                                                       or ends a sentence
``1er`` ``3º``      dropped                                            a number glued to letters: ordinal
``5km``                                                                suffix or unit, read as a word
==================  =================================================  ======================================

A space is a thousands separator only between a group of one to three digits and groups of exactly three
(``1990 200`` is two numbers). The decimal word comes from :data:`DECIMAL_WORDS`.

Mandarin writes ``,`` between thousands and ``.`` before decimals (``1,234.5`` -> ``一千二百三十四点五``); other
commas or points between digits (``1,5``, ``1.2.3``) are dropped. A ``.`` between digits is read ``点`` and the
digits after it one by one, ``N%`` (or full-width ``N％``) is read ``百分之N``, and a four-digit run before ``年``
(a year) is read digit by digit (``2008年`` -> ``二零零八年``).

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

# How a comma-decimal language names its decimal comma. Written here, not taken from num2words, because
# num2words reads Spanish decimals with "punto" (the Latin American decimal point), drops Italian decimals
# altogether (3.5 -> "tre") and drops trailing zeros (2,0 -> "zwei").
DECIMAL_WORDS = {"de": "komma", "fr": "virgule", "es": "coma", "it": "virgola", "pl": "przecinek"}
ORDINAL_POINT_LANGUAGES = frozenset({"de", "pl"})  # "3. Mai", "3. maja": a point after the number = ordinal
_GROUP_SPACES = " \u00a0\u202f\u2009"

_SPACE_GROUPED = re.compile(rf"(?<![\d.,])\d{{1,3}}(?:[{_GROUP_SPACES}]\d{{3}})+(?!\d)")
_NUMBER_TOKEN = re.compile(r"\d+(?:[.,]\d+)*")
_POINT_GROUPED = re.compile(r"[1-9]\d{0,2}(?:\.\d{3})+")
_ZH_READABLE = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_ZH_NUMBER = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?([%％年])?")
_ZH_DIGITS = "零一二三四五六七八九"
_ZH_SMALL_UNITS = ("", "十", "百", "千")
_ZH_GROUP_UNITS = ("", "万", "亿", "万亿")
_HAN_NAME_PREFIXES = ("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH")


class UnreadableNumber(ValueError):
    """A number in a transcript has no single reading in its language; the message names the number and why."""


def normalise_text(text: str, lang: str) -> str:
    """Return ``text`` normalised for language ``lang`` (see the module docstring for the rules).

    Raises :class:`UnreadableNumber` if a number in ``text`` cannot be read unambiguously.
    """
    spec = get_language(lang)
    text = unicodedata.normalize("NFC", text)
    if spec.script == "hanzi":
        for match in _NUMBER_TOKEN.finditer(text):
            if not _ZH_READABLE.fullmatch(match.group()):
                raise UnreadableNumber(f"{match.group()!r}: a comma or point between digits that is neither a "
                                       "thousands comma nor one decimal point")
        text = _ZH_NUMBER.sub(_zh_number_words, text)
        text = "".join(" " if _is_silent_punctuation(ch) else ch for ch in text)
    else:
        text = _SPACE_GROUPED.sub(lambda m: re.sub(f"[{_GROUP_SPACES}]", "", m.group()), text)
        text = _NUMBER_TOKEN.sub(lambda m: f" {_latin_number_reading(m, lang)} ", text)
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


def _latin_number_reading(match: re.Match, lang: str) -> str:
    """Words for the number ``match`` found by ``_NUMBER_TOKEN`` in a de/fr/es/it/pl text (thousands already
    joined across spaces); raise :class:`UnreadableNumber` for the cases the module docstring lists as dropped."""
    _check_number_context(match, lang)
    token = match.group()
    integer, comma, fraction = token.partition(",")
    if "," in fraction or "." in fraction:
        raise UnreadableNumber(f"{token!r}: more than one decimal comma, or a point after it")
    if "." in integer:
        if not _POINT_GROUPED.fullmatch(integer):
            raise UnreadableNumber(
                f"{token!r}: a point that does not group three digits (a date, a time or an English decimal point)"
            )
        integer = integer.replace(".", "")
    elif lang == "es" and len(fraction) == 3:
        raise UnreadableNumber(f"{token!r}: a decimal comma in Spain, a thousands comma in Latin America")
    words = _latin_number_words(integer, lang)
    if not comma:
        return words
    if len(fraction) > 1:
        raise UnreadableNumber(
            f"{token!r}: speakers read a {len(fraction)}-digit fraction digit by digit or as one number"
        )
    return f"{words} {DECIMAL_WORDS[lang]} {num2words(int(fraction), lang=lang)}"


def _check_number_context(match: re.Match, lang: str) -> None:
    """Raise :class:`UnreadableNumber` if the number ``match`` is glued to letters (``1er``, ``5km``) or, in
    de/pl, followed by a point and more text (an ordinal: ``3. Mai``)."""
    after = match.string[match.end():]
    if after[:1].isalpha():
        glued = match.group() + after.split()[0]
        raise UnreadableNumber(f"{glued!r}: a number glued to letters (an ordinal or a unit)")
    if lang in ORDINAL_POINT_LANGUAGES and after.startswith(".") and any(ch.isalnum() for ch in after):
        name = get_language(lang).name
        raise UnreadableNumber(f"'{match.group()}.' before more text: a {name} ordinal or a sentence end")


def _latin_number_words(digits: str, lang: str) -> str:
    """Spell a run of (any script's) decimal digits in ``lang`` with num2words."""
    if _read_digit_by_digit(digits):
        return " ".join(num2words(int(d), lang=lang) for d in digits)
    return num2words(int(digits), lang=lang)


def _read_digit_by_digit(digits: str) -> bool:
    return (len(digits) > 1 and int(digits[0]) == 0) or len(digits) > MAX_CARDINAL_DIGITS


def _zh_number_words(match: re.Match) -> str:
    """Chinese reading of ``N``, ``N.M``, ``N%`` or ``N年`` (the suffix matched by ``_ZH_NUMBER``)."""
    integer, fraction, suffix = match.group(1).replace(",", ""), match.group(2), match.group(3)
    year = suffix == "年" and fraction is None and len(match.group(1)) == 4  # "2,008年" is a count, not a year
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
