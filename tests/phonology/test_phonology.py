"""Normalisation, lexicon, phone inventory and sentencepiece targets."""
from __future__ import annotations

import pytest
import torch

import asrprune.phonology.lexicon as lexicon_module
from asrprune.phonology.inventory import BLANK, UNK, InventoryError, PhoneInventory
from asrprune.phonology.languages import LANGUAGES, get_language
from asrprune.phonology.lexicon import Lexicon, LexiconError
from asrprune.phonology.normalise import UnreadableNumber, normalise_text, untranscribable_characters, zh_cardinal
from asrprune.phonology.subwords import SubwordTokenizer, train_sentencepiece

# --- languages ---------------------------------------------------------------------------------------------


def test_language_specs():
    assert sorted(LANGUAGES) == ["de", "es", "fr", "it", "pl", "zh"]
    assert get_language("fr").espeak_voice == "fr-fr"
    assert get_language("zh").espeak_voice == "cmn-latn-pinyin"
    assert get_language("zh").script == "hanzi"
    with pytest.raises(ValueError, match=r"'en'.*de, fr, es, it, pl, zh"):
        get_language("en")


# --- normalise ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lang, raw, expected",
    [
        ("de", "Er hat 21 Äpfel, nicht wahr?", "er hat einundzwanzig äpfel nicht wahr"),
        ("de", "Wie geht's?  „Gut“ – danke.", "wie gehts gut danke"),
        ("de", "Zimmer 007", "zimmer null null sieben"),
        ("fr", "«L’homme» est-il là ? C'est 1984 !", "l'homme est il là c'est mille neuf cent quatre vingt quatre"),
        ("fr", "Il a 21 ans.", "il a vingt et un ans"),
        ("it", "Dell’acqua, un po' di più.", "dell'acqua un po di più"),
        ("es", "¿Qué tal? ¡Hola!", "qué tal hola"),
        ("pl", "Zażółć GĘŚLĄ jaźń.", "zażółć gęślą jaźń"),
        ("es", "cafe\u0301", "café"),  # NFC
        ("zh", "你好，世界！「再见」", "你好 世界 再见"),
        ("zh", "２０１８年 增长 3.5% 共 10010 人", "二零一八年 增长 百分之三点五 共 一万零一十 人"),
        ("zh", "  他 说\u3000好  ", "他 说 好"),
        ("zh", "降 ５０％ 是 10年", "降 百分之五十 是 十年"),
    ],
)
def test_normalise_text(lang, raw, expected):
    assert normalise_text(raw, lang) == expected


@pytest.mark.parametrize(
    "lang, raw, expected",
    [
        ("de", "1.234,5", "eintausendzweihundertvierunddreißig komma fünf"),
        ("de", "1.234 Bäume", "eintausendzweihundertvierunddreißig bäume"),  # a point before 3 digits groups
        ("de", "1,5 Liter", "eins komma fünf liter"),
        ("de", "Es kamen 12\u202f000 Leute.", "es kamen zwölftausend leute"),  # narrow no-break space
        ("de", "Es waren 21.", "es waren einundzwanzig"),  # a final point ends the sentence
        ("de", "1990 200", "eintausendneunhundertneunzig zweihundert"),  # 4 digits before the space: two numbers
        ("fr", "1 234,5 mètres", "mille deux cent trente quatre virgule cinq mètres"),
        ("fr", "12\u00a0000 habitants", "douze mille habitants"),
        ("es", "1.234,5", "mil doscientos treinta y cuatro coma cinco"),
        ("es", "2,5 kilos", "dos coma cinco kilos"),
        ("it", "1.234,5", "milleduecentotrentaquattro virgola cinque"),
        ("it", "0,5", "zero virgola cinque"),
        ("pl", "1 234,5", "tysiąc dwieście trzydzieści cztery przecinek pięć"),
        ("pl", "2,5 litra", "dwa przecinek pięć litra"),
        ("zh", "1,234.5元", "一千二百三十四点五元"),
    ],
)
def test_normalise_reads_decimal_commas_and_thousands_separators(lang, raw, expected):
    assert normalise_text(raw, lang) == expected


@pytest.mark.parametrize(
    "lang, raw, reason",
    [
        ("de", "3,14", r"'3,14': speakers read a 2-digit fraction digit by digit or as one number"),
        ("de", "am 3. Mai", r"'3\.' before more text: a German ordinal or a sentence end"),
        ("pl", "3. maja", r"'3\.' before more text: a Polish ordinal or a sentence end"),
        ("de", "am 1.5.2020", r"'1\.5\.2020': a point that does not group three digits \(a date, a time"),
        ("it", "alle 13.30", r"'13\.30': a point that does not group three digits"),
        ("de", "1,2,3", r"'1,2,3': more than one decimal comma"),
        ("es", "1,234", r"'1,234': a decimal comma in Spain, a thousands comma in Latin America"),
        ("fr", "le 1er mai", r"'1er': a number glued to letters \(an ordinal or a unit\)"),
        ("it", "5km", r"'5km': a number glued to letters"),
        ("zh", "1,5", r"'1,5': a comma or point between digits that is neither a thousands comma"),
        ("zh", "1.2.3", r"'1\.2\.3': a comma or point between digits"),
    ],
)
def test_normalise_refuses_numbers_without_one_reading(lang, raw, reason):
    with pytest.raises(UnreadableNumber, match=reason):
        normalise_text(raw, lang)


@pytest.mark.parametrize(
    "number, expected",
    [(0, "零"), (10, "十"), (15, "十五"), (101, "一百零一"), (1005, "一千零五"), (10010, "一万零一十"),
     (150000, "十五万"), (100000001, "一亿零一"), (110000000, "一亿一千万")],
)
def test_zh_cardinal(number, expected):
    assert zh_cardinal(number) == expected


def test_untranscribable_characters():
    assert untranscribable_characters(normalise_text("Zażółć gęślą jaźń", "pl"), "pl") == []
    assert untranscribable_characters(normalise_text("l'homme", "fr"), "fr") == []
    # spoken symbols are kept by the normaliser so that the utterance is dropped, not silently shortened
    assert untranscribable_characters(normalise_text("50 % für 3 €, Ωmega", "de"), "de") == ["%", "ω", "€"]
    assert untranscribable_characters(normalise_text("l'homme", "de"), "de") == []  # apostrophe removed
    assert untranscribable_characters(normalise_text("他 说 ABC。", "zh"), "zh") == ["A", "B", "C"]
    assert untranscribable_characters("你好 〇", "zh") == []
    assert untranscribable_characters(normalise_text("增长 % 左右", "zh"), "zh") == ["%"]


# --- lexicon -----------------------------------------------------------------------------------------------


def test_lexicon_save_load_round_trip(tmp_path):
    lexicon = Lexicon({"zeit": ("t", "s", "a", "ɪ", "t"), "ohne": ("oː", "n", "ə")})
    path = tmp_path / "lang" / "lexicon.txt"
    lexicon.save(path)
    assert path.read_text(encoding="utf-8") == "ohne oː n ə\nzeit t s a ɪ t\n"
    loaded = Lexicon.load(path)
    assert loaded == lexicon
    assert len(loaded) == 2 and "zeit" in loaded and "uhr" not in loaded
    assert loaded.words() == ["ohne", "zeit"]
    assert loaded.phones() == {"t", "s", "a", "ɪ", "oː", "n", "ə"}
    assert loaded.transcribe(["zeit", "ohne"]) == ("t", "s", "a", "ɪ", "t", "oː", "n", "ə")
    with pytest.raises(KeyError, match="'uhr'"):
        loaded.transcribe(["zeit", "uhr"])
    assert len(Lexicon.load_or_empty(tmp_path / "missing.txt")) == 0


def test_lexicon_rejects_bad_entries():
    with pytest.raises(LexiconError, match="NFD"):
        Lexicon({"ich": ("ɪ", "ç")})  # NFC ç
    with pytest.raises(LexiconError, match="whitespace"):
        Lexicon({"zwei wörter": ("a",)})
    with pytest.raises(LexiconError, match="no phones"):
        Lexicon({"leer": ()})


@pytest.mark.parametrize(
    "content, message",
    [
        ("ohne oː n ə\nzeit\n", r"lexicon.txt:2: word 'zeit' has no phones"),
        ("ohne oː n ə\n\nohne o n\n", r"lexicon.txt:3: word 'ohne' listed twice"),
        ("ich ɪ ç\n", r"lexicon.txt:1: word 'ich'.*not in NFD"),
        ("ohne o5 n\n", r"lexicon.txt:1: word 'ohne'.*'o5' is not a panphon segment"),
    ],
)
def test_lexicon_load_errors_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "lexicon.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LexiconError, match=message):
        Lexicon.load(path)


def test_lexicon_that_is_not_utf8_names_file_line_and_byte(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_bytes("ohne oː n ə\n".encode() + "süß z y s\n".encode("latin-1"))
    with pytest.raises(LexiconError, match=r"lexicon\.txt:2: not UTF-8 \(byte b'\\xfc' at column 2\)"):
        Lexicon.load(path)


def test_add_words_only_converts_new_words(monkeypatch):
    converted: list[list[str]] = []
    real_words_to_phones = lexicon_module.words_to_phones

    def counting_words_to_phones(words, lang):
        converted.append(list(words))
        return real_words_to_phones(words, lang)

    monkeypatch.setattr(lexicon_module, "words_to_phones", counting_words_to_phones)
    lexicon = Lexicon({"zeit": ("t", "s", "a", "ɪ", "t")})
    failures = lexicon.add_words(["zeit", "ohne", "ohne", "©"], "de")
    assert converted == [["ohne", "©"]]
    assert failures.keys() == {"©"}
    assert lexicon["ohne"] == ("oː", "n", "ə")
    assert lexicon.add_words(["ohne", "zeit"], "de") == {}
    assert converted == [["ohne", "©"]]


# --- inventory ---------------------------------------------------------------------------------------------


def test_inventory_order_encode_decode():
    inventory = PhoneInventory.from_phones(["ʃ", "t", "a", "t"])
    assert inventory.tokens == [BLANK, UNK, "a", "t", "ʃ"]
    assert inventory.phones == ["a", "t", "ʃ"]
    assert len(inventory) == 5
    assert inventory.index("ʃ") == 4
    assert inventory.encode(["t", "a", "ʃ"]) == [3, 2, 4]
    assert inventory.decode([3, 2, torch.tensor(4)]) == ["t", "a", "ʃ"]
    with pytest.raises(KeyError, match="'x'"):
        inventory.encode(["t", "x"])
    with pytest.raises(IndexError, match="5"):
        inventory.decode([5])


def test_inventory_from_lexicons():
    german = Lexicon({"zeit": ("t", "s", "a", "ɪ", "t")})
    polish = Lexicon({"syn": ("s", "ɨ", "n")})
    inventory = PhoneInventory.from_lexicons([german, polish])
    assert inventory.phones == ["a", "n", "s", "t", "ɨ", "ɪ"]
    assert inventory.tokens[:2] == ["<blank>", "<unk>"] and len(inventory) == 8


def test_inventory_save_load_and_equality(tmp_path):
    inventory = PhoneInventory.from_phones(["a", "t"])
    path = tmp_path / "tokens.txt"
    inventory.save(path)
    assert path.read_text(encoding="utf-8") == "<blank>\n<unk>\na\nt\n"
    assert PhoneInventory.load(path) == inventory
    assert PhoneInventory.from_phones(["a"]) != inventory


@pytest.mark.parametrize(
    "content, message",
    [
        ("<unk>\n<blank>\na\n", r"tokens.txt:1: expected '<blank>'"),
        ("<blank>\n<unk>\na\nt\na\n", r"tokens.txt:5: token 'a' repeats line 3"),
        ("<blank>\n<unk>\na\n<unk>\n", r"tokens.txt:4: expected a phone, got '<unk>'"),
        ("<blank>\n<unk>\na b\n", r"tokens.txt:3: expected one token"),
        ("<blank>\n", r"tokens.txt: 1 tokens"),
    ],
)
def test_inventory_load_errors_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "tokens.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InventoryError, match=message):
        PhoneInventory.load(path)


# --- sentencepiece -----------------------------------------------------------------------------------------

CORPUS = [
    "der hund läuft schnell über die straße",
    "die katze schläft auf dem sofa",
    "ein hund und eine katze spielen im garten",
    "l'homme est là avec le chien",
] * 10


@pytest.mark.parametrize("model_type, vocab_size", [("unigram", 40), ("bpe", 40), ("char", 60)])
def test_sentencepiece_round_trip(tmp_path, model_type, vocab_size):
    model = train_sentencepiece(CORPUS, tmp_path / "sp" / model_type, vocab_size, model_type)
    assert model == tmp_path / "sp" / f"{model_type}.model" and model.is_file()
    tokenizer = SubwordTokenizer(model)
    assert tokenizer.pieces[:2] == [BLANK, UNK]
    for text in CORPUS[:4]:
        pieces = tokenizer.encode(text)
        assert all(piece in tokenizer.pieces for piece in pieces)
        assert tokenizer.decode(pieces) == text
    if model_type == "char":
        assert len(tokenizer.pieces) == 2 + len(set("".join(CORPUS).replace(" ", "▁")))
        assert tokenizer.encode("der hund") == ["▁", "d", "e", "r", "▁", "h", "u", "n", "d"]
    else:
        assert len(tokenizer.pieces) == vocab_size
    assert tokenizer.encode("ħ") == ["▁", UNK]


def test_sentencepiece_char_vocab_size_is_an_upper_bound(tmp_path):
    tokenizer = SubwordTokenizer(train_sentencepiece(CORPUS, tmp_path / "char", 10, "char"))
    assert tokenizer.pieces == [BLANK, UNK, "▁", "e", "n", "l", "a", "d", "i", "t"]
    assert tokenizer.encode("der") == ["▁", "d", "e", UNK]


def test_sentencepiece_rejects_unknown_model_type(tmp_path):
    with pytest.raises(ValueError, match="'word'"):
        train_sentencepiece(CORPUS, tmp_path / "sp", 40, "word")
