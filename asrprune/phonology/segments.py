"""espeak-ng IPA -> phone tokens that panphon knows.

Token form: every phone token in asrprune (lexicons, ``phones`` files, the phone inventory) is a panphon
segment in **NFD** form, exactly as ``panphon.FeatureTable().ipa_segs`` returns it, so that a token can be
looked up in panphon without renormalising (``ç`` is stored as ``c`` + U+0327, ``ɔ̃`` as ``ɔ`` + U+0303).

Steps, in order:

1. language-specific rewrites of espeak notation (``ESPEAK_REWRITES``; longest match first);
2. deletion of marks that are not phones (``NON_PHONE_MARKS``): stress ``ˈ ˌ``, syllable and linking marks
   ``. ‿ - | ‖``, spaces (espeak may spell one word as several, e.g. an abbreviation), and ASCII digits, which
   espeak prints as stress-level residue in Latin languages (de ``aneinander`` -> ``ˌan1aɪnˈandɜ``) and as the
   first digit of the tone contour in Mandarin (see below);
3. NFD, then panphon's longest-match segmentation. Affricates written without a tie bar come out as two
   tokens (``tʃ`` -> ``t ʃ``), diphthongs as two vowels (espeak writes ``aɪ``), length and nasality stay on
   the vowel (``ɑː``, ``ɔ̃``).

Any symbol panphon still does not know raises :class:`UnknownPhoneError` naming it, its code point, the word
and the language: an unseen espeak symbol must be added to the table deliberately, never dropped.

What espeak-ng 1.51 actually prints (measured on the 100k most frequent ``wordfreq`` words of de fr es it pl
and on all 420 pinyin syllables x 5 tones) and why each rewrite exists:

- de: ``??`` is how espeak prints its ``UR`` phoneme (r-vocalised short u, ``durch`` -> ``dˈ??ç``); it is
  written ``ʊɐ`` (two vowels, like espeak's other diphthongs).
- zh (``cmn-latn-pinyin``): espeak's own notation leaks into its IPA. ``h`` after a stop is aspiration
  (``ʰ``); ``.`` after ``s``/``ts``/``i`` marks retroflexion (``ʂ``, ``ʈʂ``, apical ``ɻ̩`` in *shi*);
  ``i̪`` is the apical vowel of *si* (``ɹ̩``); ``o-`` is ``ɤ`` (*ge*); ``nɡ`` is the final ``ŋ`` of *-ong*;
  ``ər`` is the rhotic vowel of *er* (``ə˞``); a bare ``ʲ`` is espeak's palatal onset mark of *yu* and is not a
  phone. Tones are printed as the first character of espeak's contour name (``5`` for both 55 and 51,
  ``ɜ`` for 35, ``2`` for 21, ``1`` for 11), which cannot tell tone 1 from tone 4, so the tone mark is
  deleted here and the tone is taken from the pinyin instead (:func:`tone_letters`).
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import panphon

ESPEAK_REWRITES: dict[str, dict[str, str]] = {
    "de": {"??": "ʊɐ"},
    "zh": {
        "ts.h": "ʈʂʰ",
        "ts.": "ʈʂ",
        "s.": "ʂ",
        "i.": "ɻ̩",
        "i̪": "ɹ̩",
        "tsh": "tsʰ",
        "tɕh": "tɕʰ",
        "ph": "pʰ",
        "th": "tʰ",
        "kh": "kʰ",
        "o-": "ɤ",
        "nɡ": "ŋ",
        "ər": "ə˞",
        "ʲ": "",
        "ɜ": "",  # the tone-2 mark (contour 35); Mandarin espeak has no ɜ vowel
    },
}
NON_PHONE_MARKS = frozenset("ˈˌ.‿-|‖ 0123456789")

# Chao tone letters per Mandarin tone (5 = neutral). Tone 3 is the half-third 21 that espeak synthesises and
# that speakers use everywhere except phrase-finally; the neutral tone has no fixed contour (its pitch follows
# the preceding syllable), so it gets no tone token.
CHAO_TONE_LETTERS: dict[int, tuple[str, ...]] = {
    1: ("˥",),
    2: ("˧", "˥"),
    3: ("˨", "˩"),
    4: ("˥", "˩"),
    5: (),
}


class UnknownPhoneError(ValueError):
    """espeak printed a symbol that panphon does not know and no rewrite covers."""


@lru_cache(maxsize=1)
def feature_table() -> panphon.FeatureTable:
    """The shared panphon feature table (loading it takes about a second)."""
    return panphon.FeatureTable()


@lru_cache(maxsize=None)
def _rewrite_pattern(lang: str) -> re.Pattern | None:
    table = ESPEAK_REWRITES.get(lang)
    if not table:
        return None
    return re.compile("|".join(re.escape(key) for key in sorted(table, key=len, reverse=True)))


def ipa_to_segments(ipa: str, *, word: str = "", lang: str = "") -> list[str]:
    """Split espeak IPA for one word into panphon-known phone tokens (NFD strings), in order.

    ``word`` and ``lang`` name the source in error messages; ``lang`` also selects the rewrites in
    ``ESPEAK_REWRITES``. Returns an empty list if espeak's output held no phones.
    Raises :class:`UnknownPhoneError` for a symbol panphon does not know.
    """
    pattern = _rewrite_pattern(lang)
    if pattern is not None:
        table = ESPEAK_REWRITES[lang]
        ipa = pattern.sub(lambda m: table[m.group()], ipa)
    phones_only = unicodedata.normalize("NFD", "".join(ch for ch in ipa if ch not in NON_PHONE_MARKS))
    table = feature_table()
    segments = table.segs_safe(phones_only, normalize=False)
    for segment in segments:
        if not table.seg_known(segment, normalize=False):
            points = " ".join(f"U+{ord(ch):04X}" for ch in segment)
            raise UnknownPhoneError(
                f"unknown IPA symbol {segment!r} ({points}) in espeak output {ipa!r} "
                f"for word {word!r} (language {lang or '?'}); add it to ESPEAK_REWRITES in {__name__}"
            )
    return segments


def tone_letters(tone: int) -> tuple[str, ...]:
    """Chao tone-letter tokens for Mandarin tone ``tone`` (1-4, 5 = neutral); see ``CHAO_TONE_LETTERS``."""
    try:
        return CHAO_TONE_LETTERS[tone]
    except KeyError:
        raise ValueError(f"Mandarin tone {tone!r} is not one of 1-5") from None


def phone_token_problem(token: str) -> str | None:
    """Why ``token`` is not a valid phone token (an NFD panphon segment), or None if it is."""
    if unicodedata.normalize("NFD", token) != token:
        return f"phone {token!r} is not in NFD form"
    if not feature_table().seg_known(token, normalize=False):
        return f"phone {token!r} is not a panphon segment"
    return None
