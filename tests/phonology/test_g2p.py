"""espeak IPA -> panphon tokens, and G2P of real words with espeak-ng / pypinyin.

Expected pronunciations were written by hand and checked against espeak-ng 1.51 on this machine.
Tokens are NFD (``ç`` is ``c`` + U+0327), which the ``nfd`` helper spells out.
"""
from __future__ import annotations

import time
import unicodedata

import pytest
from wordfreq import top_n_list

from asrprune.phonology.g2p import words_to_phones
from asrprune.phonology.normalise import normalise_text, untranscribable_characters
from asrprune.phonology.segments import (
    UnknownPhoneError,
    feature_table,
    ipa_to_segments,
    phone_token_problem,
    tone_letters,
)


def nfd(*tokens: str) -> tuple[str, ...]:
    return tuple(unicodedata.normalize("NFD", token) for token in tokens)


# --- ipa_to_segments ---------------------------------------------------------------------------------------


def test_stress_marks_are_stripped():
    assert ipa_to_segments("ˌanaɪnˈandɜ", lang="de") == ["a", "n", "a", "ɪ", "n", "a", "n", "d", "ɜ"]


def test_affricate_without_tie_bar_is_split():
    assert ipa_to_segments("tʃˈʏs", lang="de") == ["t", "ʃ", "ʏ", "s"]


def test_long_vowel_is_one_token():
    assert ipa_to_segments("ˈoːnə", lang="de") == ["oː", "n", "ə"]


def test_nasal_vowel_is_one_token_and_tokens_are_nfd():
    assert ipa_to_segments("bɔ̃ʒˈuʁ", lang="fr") == ["b", "ɔ\u0303", "ʒ", "u", "ʁ"]
    assert ipa_to_segments("ɪç", lang="de") == ["ɪ", "c\u0327"]


def test_espeak_question_marks_in_german_are_the_ur_vowel():
    # espeak-ng 1.51 prints its German phoneme UR (durch, kurz, wurde) as "??"
    assert ipa_to_segments("dˈ??ç", word="durch", lang="de") == list(nfd("d", "ʊ", "ɐ", "ç"))


def test_linking_hyphen_and_stress_digit_are_dropped():
    assert ipa_to_segments("də-", lang="fr") == ["d", "ə"]
    assert ipa_to_segments("ˌan1aɪn", lang="de") == ["a", "n", "a", "ɪ", "n"]


def test_mandarin_espeak_notation_is_rewritten():
    assert ipa_to_segments("ts.hˈi.5", lang="zh") == ["ʈ", "ʂʰ", "ɻ\u0329"]
    assert ipa_to_segments("tshˈi̪ɜ", lang="zh") == ["t", "sʰ", "ɹ\u0329"]
    assert ipa_to_segments("kˈo-5", lang="zh") == ["k", "ɤ"]
    assert ipa_to_segments("tˈonɡ5", lang="zh") == ["t", "o", "ŋ"]


def test_unknown_symbol_raises_naming_symbol_word_and_language():
    with pytest.raises(UnknownPhoneError) as err:
        ipa_to_segments("kˈaᵻt", word="kat", lang="pl")
    message = str(err.value)
    assert "'ᵻ'" in message and "U+1D7B" in message and "'kat'" in message and "pl" in message
    # the German "??" rewrite does not apply to other languages
    with pytest.raises(UnknownPhoneError, match=r"U\+003F"):
        ipa_to_segments("d??", word="x", lang="fr")


def test_tone_letters():
    assert tone_letters(1) == ("˥",)
    assert tone_letters(2) == ("˧", "˥")
    assert tone_letters(3) == ("˨", "˩")
    assert tone_letters(4) == ("˥", "˩")
    assert tone_letters(5) == ()
    with pytest.raises(ValueError, match="6"):
        tone_letters(6)


def test_phone_token_problem():
    assert phone_token_problem(unicodedata.normalize("NFD", "ç")) is None
    assert "NFD" in phone_token_problem("ç")
    assert "panphon" in phone_token_problem("5")


# --- words_to_phones ---------------------------------------------------------------------------------------


def test_latin_words():
    result = words_to_phones(["durch", "zeit", "durch", "computer"], "de")
    assert result.failures == {}
    assert result.lexicon["durch"] == nfd("d", "ʊ", "ɐ", "ç")
    assert result.lexicon["zeit"] == ("t", "s", "a", "ɪ", "t")
    # an English loan comes back in English phones, without espeak's "(en)" language flags
    assert result.lexicon["computer"] == ("k", "ɔ", "m", "p", "j", "uː", "t", "ɜ")
    assert list(result.lexicon) == ["durch", "zeit", "computer"]


def test_french_apostrophe_word():
    result = words_to_phones(["l'homme", "vingt"], "fr")
    assert result.lexicon == {"l'homme": ("l", "ɔ", "m"), "vingt": nfd("v", "ɛ̃")}


def test_failures_are_reported_not_raised():
    result = words_to_phones(["hallo", "", "zwei wörter", "©"], "de")
    assert result.lexicon == {"hallo": ("h", "a", "l", "oː")}
    assert set(result.failures) == {"", "zwei wörter", "©"}
    assert "no phones" in result.failures["©"]


def test_mandarin_tones_become_chao_letters():
    result = words_to_phones(["你好", "妈", "是", "去", "儿子", "你A"], "zh")
    # 你好: third-tone sandhi inside the word gives ni2 hao3
    assert result.lexicon["你好"] == ("n", "i", "˧", "˥", "χ", "ɑ", "u", "˨", "˩")
    assert result.lexicon["妈"] == ("m", "ɑ", "˥")
    assert result.lexicon["是"] == ("ʂ", "ɻ\u0329", "˥", "˩")
    assert result.lexicon["去"] == ("t", "ɕʰ", "y", "˥", "˩")
    # 子 is neutral tone (zi5): no tone letters
    assert result.lexicon["儿子"] == ("ə˞", "˧", "˥", "t", "s", "ɹ\u0329")
    assert result.failures == {"你A": "no pinyin for 'A'"}


@pytest.mark.parametrize("lang", ["de", "fr", "es", "it", "pl", "zh"])
def test_frequent_words_all_give_panphon_tokens(lang):
    words = {normalise_text(word, lang) for word in top_n_list(lang, 400)}
    words = sorted(w for w in words if w and " " not in w and not untranscribable_characters(w, lang))
    assert len(words) > 300
    start = time.perf_counter()
    result = words_to_phones(words, lang)
    assert time.perf_counter() - start < 5
    assert result.failures == {}
    table = feature_table()
    for word, phones in result.lexicon.items():
        assert phones, word
        for phone in phones:
            assert table.seg_known(phone, normalize=False), (word, phone)
            assert unicodedata.normalize("NFD", phone) == phone
