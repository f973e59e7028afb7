"""The six languages asrprune handles and what the normaliser and G2P need to know about each.

``letters`` is the language's own alphabet after normalisation (lower case, NFC). Text holding any other
character (a Cyrillic word, a ``€`` sign, an accented loan letter) is reported by
:func:`asrprune.phonology.normalise.untranscribable_characters` and the importers drop that utterance, because
espeak's voice for the language would read it with the wrong language's rules or spell it out. Mandarin has no
finite letter list: every Han ideograph is transcribable (``script == "hanzi"``).
"""
from __future__ import annotations

import dataclasses
import string


@dataclasses.dataclass(frozen=True)
class LanguageSpec:
    """One language: ISO 639-1 ``code``, English ``name``, phonemizer/espeak-ng ``espeak_voice``, ``script``
    (``"latin"`` or ``"hanzi"``), ``letters`` allowed in normalised text (empty for hanzi) and whether a
    word-internal apostrophe is part of a word (``l'homme``, ``dell'acqua``)."""

    code: str
    name: str
    espeak_voice: str
    script: str
    letters: frozenset[str]
    keeps_apostrophe: bool = False


def _latin(extra: str) -> frozenset[str]:
    """The 26 basic Latin lower-case letters plus the language's own letters ``extra``."""
    return frozenset(string.ascii_lowercase + extra)


LANGUAGES: dict[str, LanguageSpec] = {
    spec.code: spec
    for spec in (
        LanguageSpec("de", "German", "de", "latin", _latin("äöüß")),
        LanguageSpec(
            "fr", "French", "fr-fr", "latin", _latin("àâæçéèêëîïôœùûüÿ'"), keeps_apostrophe=True
        ),
        LanguageSpec("es", "Spanish", "es", "latin", _latin("áéíóúüñ")),
        LanguageSpec("it", "Italian", "it", "latin", _latin("àèéìíîòóùú'"), keeps_apostrophe=True),
        LanguageSpec("pl", "Polish", "pl", "latin", _latin("ąćęłńóśźż")),
        LanguageSpec("zh", "Mandarin Chinese", "cmn-latn-pinyin", "hanzi", frozenset()),
    )
}


def get_language(code: str) -> LanguageSpec:
    """Return the :class:`LanguageSpec` for ``code``; raise ``ValueError`` naming it and the supported codes."""
    try:
        return LANGUAGES[code]
    except KeyError:
        raise ValueError(f"unsupported language {code!r}; supported: {', '.join(LANGUAGES)}") from None
