"""Error counting (PER/WER/CER via jiwer 4) and ESPnet-style result tables."""
from __future__ import annotations

import json
import math

import pytest

from asrprune.scoring.error_rates import (
    ErrorCounts,
    alignment_text,
    metric_for_language,
    score_characters_zh,
    score_phones,
    score_words,
)
from asrprune.scoring.report import ratio_table
from asrprune.scoring.result_table import ResultRow, markdown_table, read_results, write_results


def test_wer_substitution_and_deletion_by_hand():
    counts = score_words(["a b c d"], ["a x c"])
    assert counts == ErrorCounts(
        sentences=1, sentence_errors=1, ref_units=4, correct=2, substitutions=1, deletions=1, insertions=0
    )
    assert counts.error_rate == pytest.approx(50.0)
    assert counts.correct_rate == pytest.approx(50.0)
    assert counts.sentence_error_rate == pytest.approx(100.0)


def test_wer_collapses_spaces_and_counts_sentence_errors():
    counts = score_words(["  the  cat sat ", "hello world", "a"], ["the cat   sat", "hello there world", "a"])
    assert (counts.sentences, counts.sentence_errors, counts.ref_units) == (3, 1, 6)
    assert (counts.correct, counts.substitutions, counts.deletions, counts.insertions) == (6, 0, 0, 1)
    assert counts.error_rate == pytest.approx(100 / 6)
    assert counts.sentence_error_rate == pytest.approx(100 / 3)


def test_per_on_phone_lists_treats_each_phone_as_a_unit():
    refs = [["ʃ", "aː", "˥"], ["t", "s", "a"]]
    hyps = [["ʃ", "a", "˥", "˩"], ["t", "s", "a"]]
    counts = score_phones(refs, hyps)
    # "aː" vs "a" is one substitution (not a character-level near miss), "˩" one insertion
    assert (counts.ref_units, counts.correct, counts.substitutions, counts.deletions, counts.insertions) == (
        6, 5, 1, 0, 1
    )
    assert counts.error_rate == pytest.approx(100 * 2 / 6)
    assert counts.sentence_errors == 1


def test_per_empty_reference_and_hypothesis_follow_jiwer():
    counts = score_phones([[], ["a", "b"], []], [["a"], [], []])
    assert (counts.sentences, counts.sentence_errors, counts.ref_units) == (3, 2, 2)
    assert (counts.correct, counts.substitutions, counts.deletions, counts.insertions) == (0, 0, 2, 1)
    assert counts.error_rate == pytest.approx(150.0)


def test_per_rejects_phone_strings_and_spaces():
    with pytest.raises(ValueError, match="reference 1"):
        score_phones(["ab"], [["a"]])
    with pytest.raises(ValueError, match="hypothesis 2"):
        score_phones([["a"], ["b"]], [["a"], ["t s"]])


def test_zh_cer_ignores_word_segmentation():
    assert score_characters_zh(["今天 天气"], ["今天天 气"]).error_rate == 0.0
    counts = score_characters_zh(["今天 天气 很好"], ["今天 天汽 好"])
    assert (counts.ref_units, counts.correct, counts.substitutions, counts.deletions, counts.insertions) == (
        6, 4, 1, 1, 0
    )


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        score_words(["a", "b"], ["a"])


def test_no_utterances_give_zero_counts():
    assert score_words([], []) == ErrorCounts()
    assert ErrorCounts().error_rate == 0.0
    assert math.isinf(score_words([""], ["a"]).error_rate)


def test_counts_add_up_over_sets():
    first = score_words(["a b c d"], ["a x c"])
    second = score_words(["e f"], ["e f g"])
    total = first + second
    assert total == score_words(["a b c d", "e f"], ["a x c", "e f g"])
    assert total.error_rate == pytest.approx(100 * 3 / 6)
    assert sum([first, second], ErrorCounts()) == total


def test_metric_for_language():
    assert metric_for_language("zh") == "cer"
    assert [metric_for_language(lang) for lang in ("de", "fr", "es", "it", "pl")] == ["wer"] * 5
    with pytest.raises(ValueError, match="unsupported language"):
        metric_for_language("xx")


def test_alignment_text_labels_each_utterance_by_id():
    text = alignment_text(["a b c d", "x y"], ["a x c", "x y"], ["spk1-utt1", "spk1-utt2"])
    assert text == (
        "=== spk1-utt1 ===\n\nREF: a b c d\nHYP: a x c *\n       S   D\n\n"
        "=== spk1-utt2 ===\n\nREF: x y\nHYP: x y\n        \n"
    )
    cer = alignment_text(["今天 天气"], ["今天 天"], ["zh1"], metric="cer")
    assert cer.startswith("=== zh1 ===\n\nREF: 今天天气\nHYP: 今天天*\n")
    with pytest.raises(ValueError, match="1 utterance ids for 2"):
        alignment_text(["a", "b"], ["a", "b"], ["u1"])


def _example_rows():
    return [
        ResultRow("test_de", "wer", score_words(["a b c d", "x y"], ["a x c", "x y"])),
        ResultRow("test_zh", "cer", score_characters_zh(["今天 天气"], ["今天天气"])),
    ]


def test_markdown_table_exact_text():
    assert markdown_table(_example_rows()) == (
        "|dataset|metric|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
        "|test_de|wer|2|6|66.7|16.7|16.7|0.0|33.3|50.0|\n"
        "|test_zh|cer|1|4|100.0|0.0|0.0|0.0|0.0|0.0|\n"
    )


def test_ratio_table_divides_error_rates_per_language_and_metric():
    def row(dataset, errors, metric="PER (greedy)"):
        return ResultRow(dataset, metric, ErrorCounts(sentences=1, sentence_errors=1, ref_units=100,
                                                      correct=100 - errors, substitutions=errors))

    rows = [row("test_de", 10), row("transfer_de", 25), row("test_fr", 20), row("transfer_fr", 30),
            row("test_es", 5), row("test_de", 40, "WER (lexicon beam)")]
    assert ratio_table(rows, "transfer", "test") == (
        "| language | metric | test Err | transfer Err | ratio |\n"
        "|---|---|---|---|---|\n"
        "| de | PER (greedy) | 10.0 | 25.0 | 2.50 |\n"
        "| fr | PER (greedy) | 20.0 | 30.0 | 1.50 |\n"
        "| mean | PER (greedy) | 15.0 | 27.5 | 1.83 |\n"
    )


def test_write_results_json_round_trip(tmp_path):
    rows = _example_rows()
    write_results(rows, tmp_path / "exp")
    assert (tmp_path / "exp" / "results.md").read_text(encoding="utf-8") == markdown_table(rows)
    records = json.loads((tmp_path / "exp" / "results.json").read_text(encoding="utf-8"))
    assert records[0]["counts"]["ref_units"] == 6
    assert records[0]["rates"]["error_rate"] == pytest.approx(100 / 3)
    assert read_results(tmp_path / "exp") == rows


def test_results_json_writes_null_for_infinite_rate(tmp_path):
    write_results([ResultRow("empty", "wer", score_words([""], ["a"]))], tmp_path)
    rates = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))[0]["rates"]
    assert rates["error_rate"] is None and rates["correct_rate"] == 0.0


def test_read_results_names_a_malformed_file(tmp_path):
    (tmp_path / "results.json").write_text('[{"dataset": "x"}]', encoding="utf-8")
    with pytest.raises(ValueError, match="results.json"):
        read_results(tmp_path)
