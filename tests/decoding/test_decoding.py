"""Greedy CTC decoding, lexicon beam search (flashlight via torchaudio) and the Witten-Bell ARPA writer."""
from __future__ import annotations

import argparse
import logging
import math

import pytest
import torch
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from asrprune.decoding.greedy import greedy_decode
from asrprune.decoding.lexicon_beam import LexiconBeamDecoder
from asrprune.data.kaldi_dir import Utterance, write_data_dir
from asrprune.decoding import ngram_lm
from asrprune.decoding.ngram_lm import arpa_vocabulary, train_arpa

TOKENS = ["<blank>", "<unk>", "a", "aː", "b", "ʃ", "˥", "ɪ", "s", "iː", "j", "uː", "ð", "ə"]
BLANK = "<blank>"


def _emissions(*frames: dict[str, float] | str, tokens: list[str] = TOKENS) -> torch.Tensor:
    """``(1, T, V)`` log-probabilities; a frame given as a token name has logit 0 there and -10 elsewhere, a frame
    given as ``{token: logit}`` sets those logits (others -20)."""
    logits = torch.full((len(frames), len(tokens)), -10.0)
    for t, frame in enumerate(frames):
        if isinstance(frame, str):
            logits[t, tokens.index(frame)] = 0.0
        else:
            logits[t] = -20.0
            for token, logit in frame.items():
                logits[t, tokens.index(token)] = logit
    return logits.log_softmax(dim=-1).unsqueeze(0)


def _decode_one(decoder: LexiconBeamDecoder, emissions: torch.Tensor):
    return decoder.decode(emissions, torch.tensor([emissions.shape[1]]))[0]


# --- greedy ---------------------------------------------------------------------------------------------------------


def test_greedy_collapses_repeats_drops_blanks_and_masks_padding():
    first = _emissions("a", "a", BLANK, "a", "b", "b")
    second = _emissions("b", BLANK, BLANK, "ʃ", "ʃ", "a")  # last frame is padding
    log_probs = torch.cat([first, second])
    ids = greedy_decode(log_probs, torch.tensor([6, 5]))
    assert [[TOKENS[i] for i in utt] for utt in ids] == [["a", "a", "b"], ["b", "ʃ"]]
    assert greedy_decode(log_probs, torch.tensor([0, 1])) == [[], [TOKENS.index("b")]]


def test_greedy_honours_another_blank_index():
    log_probs = _emissions("a", "<unk>", "a", "a")
    assert greedy_decode(log_probs, torch.tensor([4]), blank=TOKENS.index("<unk>")) == [[2, 2]]


# --- lexicon beam search ------------------------------------------------------------------------------------------


def test_words_back_to_back_without_silence_are_decoded():
    decoder = LexiconBeamDecoder(TOKENS, {"ab": ("a", "b"), "ʃaː": ("ʃ", "aː"), "ba": ("b", "a")})
    # not a single blank frame: the second word starts on the frame after the first word's last phone
    hypothesis = _decode_one(decoder, _emissions("a", "b", "ʃ", "aː"))
    assert hypothesis.words == ["ab", "ʃaː"]
    assert hypothesis.phones == ["a", "b", "ʃ", "aː"]
    # a word ending in the phone the next word starts with needs CTC's blank between them, and nothing else
    hypothesis = _decode_one(decoder, _emissions(BLANK, "b", "a", BLANK, "a", "a", "b", "b", BLANK))
    assert hypothesis.words == ["ba", "ab"]
    assert hypothesis.phones == ["b", "a", "a", "b"]


def test_batch_lengths_mask_padding_frames():
    decoder = LexiconBeamDecoder(TOKENS, {"ab": ("a", "b"), "ʃaː": ("ʃ", "aː")})
    batch = torch.cat([_emissions("a", "b", "ʃ", "aː"), _emissions("ʃ", "aː", "a", "b")])
    hypotheses = decoder.decode(batch, torch.tensor([4, 2]))
    assert [h.words for h in hypotheses] == [["ab", "ʃaː"], ["ʃaː"]]
    with pytest.raises(ValueError, match="lengths"):
        decoder.decode(batch, torch.tensor([4, 5]))


def test_homophones_without_lm_decode_deterministically_to_the_first_spelling():
    lexicon = {"see": ("s", "iː"), "sea": ("s", "iː"), "you": ("j", "uː"), "ʃaː": ("ʃ", "aː")}
    decoder = LexiconBeamDecoder(TOKENS, lexicon, nbest=2)
    assert decoder.merged_homophones == {"sea": "see"}
    emissions = _emissions("s", "iː", BLANK, "j", "uː")
    for _ in range(10):  # flashlight alone flips between "see" and "sea" on such exact ties
        nbest = decoder.decode_nbest(emissions, torch.tensor([5]))[0]
        assert nbest[0].words == ["see", "you"]
        assert len(nbest) == 2 and nbest[1].words[0] != "sea"  # the runner-up is not the homophone
    assert nbest[0].phones == ["s", "iː", "j", "uː"]
    assert nbest[1].score < nbest[0].score


def test_words_with_unknown_phones_are_skipped_and_reported(caplog):
    lexicon = {"ab": ("a", "b"), "xy": ("x", "y"), "blank": ("b", BLANK), "empty": (), "ʃaː": ("ʃ", "aː")}
    with caplog.at_level(logging.WARNING, logger="asrprune.decoding.lexicon_beam"):
        decoder = LexiconBeamDecoder(TOKENS, lexicon)
    assert decoder.skipped_words == {"xy": ("x", "y"), "blank": (BLANK,), "empty": ()}
    assert "skipped 3 of 5 words" in caplog.text and "xy (x y)" in caplog.text
    assert _decode_one(decoder, _emissions("ʃ", "aː", "a", "b")).words == ["ʃaː", "ab"]
    with pytest.raises(ValueError, match="none of its 1 words"):
        LexiconBeamDecoder(TOKENS, {"xy": ("x", "y")})


def test_bad_lexicon_and_token_entries_are_named():
    with pytest.raises(ValueError, match="'two words'"):
        LexiconBeamDecoder(TOKENS, {"two words": ("a",)})
    with pytest.raises(TypeError, match="'ab'"):
        LexiconBeamDecoder(TOKENS, {"ab": "ab"})
    with pytest.raises(ValueError, match="more than once"):
        LexiconBeamDecoder(TOKENS + ["a"], {"ab": ("a", "b")})
    with pytest.raises(FileNotFoundError, match="missing.arpa"):
        LexiconBeamDecoder(TOKENS, {"ab": ("a", "b")}, lm_path="missing.arpa")


def test_beam_size_and_threshold_pass_through():
    lexicon = {"ab": ("a", "b"), "ʃaː": ("ʃ", "aː")}
    # frame 0 slightly prefers "a", but only "ʃ" continues well: a beam of one commits to the wrong word
    emissions = _emissions({"a": 0.0, "ʃ": -0.5}, {"b": -5.0, "aː": 0.0})
    assert _decode_one(LexiconBeamDecoder(TOKENS, lexicon, beam_size=10), emissions).words == ["ʃaː"]
    assert _decode_one(LexiconBeamDecoder(TOKENS, lexicon, beam_size=1), emissions).words == ["ab"]
    narrow = LexiconBeamDecoder(TOKENS, lexicon, beam_size=10, beam_threshold=0.2)
    assert _decode_one(narrow, emissions).words == ["ab"]


def test_word_score_passes_through():
    lexicon = {"a": ("a",), "b": ("b",), "ab": ("a", "b")}
    emissions = _emissions("a", "b")
    assert _decode_one(LexiconBeamDecoder(TOKENS, lexicon, word_score=1.0), emissions).words == ["a", "b"]
    assert _decode_one(LexiconBeamDecoder(TOKENS, lexicon, word_score=-1.0), emissions).words == ["ab"]


# --- n-gram LM ------------------------------------------------------------------------------------------------------


def _arpa_entries(path) -> dict[tuple[str, ...], list[float]]:
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2:
            entries[tuple(fields[1].split())] = [float(fields[0])] + [float(f) for f in fields[2:]]
    return entries


def test_arpa_matches_hand_computed_witten_bell(tmp_path):
    path = tmp_path / "lm.arpa"
    assert train_arpa([["a"], ["a", "b"]], 2, path) == [5, 4]
    entries = _arpa_entries(path)
    # unigrams: counts a 2, b 1, </s> 2 (total 5, 3 types), vocabulary {a, b, </s>, <unk>}
    assert entries[("a",)][0] == pytest.approx(math.log10((2 + 3 / 4) / 8), abs=1e-6)
    assert entries[("<unk>",)][0] == pytest.approx(math.log10((3 / 4) / 8), abs=1e-6)
    assert entries[("<s>",)][0] == -99.0
    # history "a": 2 tokens, 2 types -> P(b | a) = (1 + 2 * P(b)) / 4, backoff 2 / 4
    assert entries[("a", "b")] == pytest.approx([math.log10((1 + 2 * 1.75 / 8) / 4)], abs=1e-6)
    assert entries[("a",)][1] == pytest.approx(math.log10(0.5), abs=1e-6)
    assert "ngram 1=5\nngram 2=4\n" in path.read_text(encoding="utf-8")


def test_arpa_loads_in_kenlm_and_every_history_normalises(tmp_path):
    sentences = [["i", "see", "you"], ["i", "see", "the", "sea"], ["the", "sea", "is", "blue"], ["you", "see"], []]
    path = tmp_path / "lm.arpa"
    train_arpa(sentences, 3, path)
    vocabulary = sorted({word for sentence in sentences for word in sentence} | {"<unk>"})
    words = Dictionary(vocabulary)
    lm = KenLM(str(path), words)

    def total_probability(state) -> float:
        scores = [lm.score(state, words.get_index(word))[1] for word in vocabulary] + [lm.finish(state)[1]]
        return sum(10.0**score for score in scores)

    histories = sentences + [["<unk>", "see"], ["sea", "blue", "i"]]
    for history in histories:
        state = lm.start(False)
        assert total_probability(state) == pytest.approx(1.0, abs=1e-5)
        for word in history:
            state, _ = lm.score(state, words.get_index(word))
            assert total_probability(state) == pytest.approx(1.0, abs=1e-5), history


def test_arpa_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="at least 2"):
        train_arpa([["a"]], 1, tmp_path / "lm.arpa")
    with pytest.raises(ValueError, match="sentence 2"):
        train_arpa([["a"], ["<s>"]], 2, tmp_path / "lm.arpa")
    with pytest.raises(ValueError, match="no sentences"):
        train_arpa([], 2, tmp_path / "lm.arpa")


def test_train_lm_cli_uses_only_the_chosen_language(tmp_path, capsys):
    utterances = [
        Utterance(f"spk-{i}", f"/audio/{i}.wav", text, "spk", lang, 1.0, ("a",))
        for i, (text, lang) in enumerate([("guten tag", "de"), ("tag auch", "de"), ("buenos dias", "es")])
    ]
    write_data_dir(tmp_path / "train", utterances)
    parser = argparse.ArgumentParser()
    ngram_lm.register_cli(parser.add_subparsers())
    args = parser.parse_args(["train-lm", str(tmp_path / "train"), "--lang", "de", "-o", str(tmp_path / "de.arpa")])
    args.func(args)
    assert arpa_vocabulary(tmp_path / "de.arpa") == {"<s>", "</s>", "<unk>", "guten", "tag", "auch"}
    assert "2 of 3 utterances (de)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="'pl'"):
        args.func(parser.parse_args(["train-lm", str(tmp_path / "train"), "--lang", "pl", "-o", "x.arpa"]))


def test_lm_chooses_between_acoustically_identical_homophones(tmp_path):
    lm_path = tmp_path / "lm.arpa"
    train_arpa([["i", "see", "you"]] * 3 + [["the", "sea"]] * 3 + [["you", "see", "the", "sea"]], 3, lm_path)
    lexicon = {"i": ("a", "ɪ"), "sea": ("s", "iː"), "see": ("s", "iː"), "you": ("j", "uː"), "the": ("ð", "ə")}
    i_see_you = _emissions("a", "ɪ", "s", "iː", "j", "uː")
    the_sea = _emissions("ð", "ə", "s", "iː")

    without_lm = LexiconBeamDecoder(TOKENS, lexicon)
    assert _decode_one(without_lm, i_see_you).words == ["i", "sea", "you"]
    assert _decode_one(without_lm, the_sea).words == ["the", "sea"]

    with_lm = LexiconBeamDecoder(TOKENS, lexicon, lm_path=lm_path, lm_weight=1.0)
    assert with_lm.merged_homophones == {}
    for _ in range(5):
        assert _decode_one(with_lm, i_see_you).words == ["i", "see", "you"]
        assert _decode_one(with_lm, the_sea).words == ["the", "sea"]


def test_homophones_outside_the_lm_vocabulary_are_merged(tmp_path):
    lm_path = tmp_path / "lm.arpa"
    train_arpa([["i", "you"], ["the", "see"]], 2, lm_path)
    lexicon = {"see": ("s", "iː"), "sea": ("s", "iː"), "si": ("s", "iː"), "cee": ("s", "iː"), "i": ("a", "ɪ")}
    decoder = LexiconBeamDecoder(TOKENS, lexicon, lm_path=lm_path)
    # "see" is in the LM; the other three all score as <unk>, so only the first of them is kept
    assert decoder.merged_homophones == {"si": "sea", "cee": "sea"}
    assert _decode_one(decoder, _emissions("a", "ɪ", "s", "iː")).words[0] == "i"
    with pytest.raises(ValueError, match="not an ARPA"):
        (tmp_path / "lm.bin").write_bytes(b"mmap lm http://kheafield.com/code format version 5\n\0\1")
        LexiconBeamDecoder(TOKENS, lexicon, lm_path=tmp_path / "lm.bin")


def test_two_segmentations_of_one_phone_string_into_as_many_words_decode_deterministically():
    lexicon = {"ba": ("b", "a"), "bab": ("b", "a", "b"), "a": ("a",), "ʃaː": ("ʃ", "aː")}
    emissions = _emissions("b", "a", "b", "a")
    found = set()
    for _ in range(20):  # flashlight alone returns "bab a" or "ba ba" first, by memory address (observed: 10 of 30)
        decoder = LexiconBeamDecoder(TOKENS, lexicon, nbest=2)
        best, second = decoder.decode_nbest(emissions, torch.tensor([4]))[0]
        found.add((tuple(best.words), tuple(second.words)))
    assert found == {(("ba", "ba"), ("bab", "a"))}  # tied: alphabetical order
    assert best.score == pytest.approx(second.score, abs=1e-3)
    assert len(LexiconBeamDecoder(TOKENS, lexicon).decode_nbest(emissions, torch.tensor([4]))[0]) == 1
