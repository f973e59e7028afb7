"""Paired bootstrap of error-rate differences and per-utterance error counts (asrprune.scoring.bootstrap)."""
from __future__ import annotations

import numpy as np
import pytest

from asrprune.scoring.bootstrap import (
    UtteranceErrors,
    paired_bootstrap,
    per_utterance_counts,
    read_utterance_errors,
    write_utterance_errors,
)
from asrprune.scoring.error_rates import score_phones, score_words

REFS = np.array([5, 8, 3, 10, 6, 7, 4, 9, 5, 6])
ERRORS = np.array([1, 2, 0, 3, 1, 0, 1, 2, 1, 1])


def test_identical_systems_give_a_degenerate_interval_at_zero():
    result = paired_bootstrap(ERRORS, ERRORS.copy(), REFS, resamples=500, seed=3)
    assert result.difference == 0.0
    assert result.low == 0.0 and result.high == 0.0


def test_identical_systems_over_seeds_and_languages():
    a = {"de": np.stack([ERRORS, ERRORS + 1]), "fr": np.stack([ERRORS[::-1], ERRORS])}
    units = {"de": REFS, "fr": REFS[::-1]}
    result = paired_bootstrap(a, {k: v.copy() for k, v in a.items()}, units, resamples=300)
    assert (result.difference, result.low, result.high) == (0.0, 0.0, 0.0)


def test_a_system_better_on_every_utterance_lies_on_one_side():
    better = ERRORS  # one error fewer than the worse system on every utterance
    worse = ERRORS + 1
    result = paired_bootstrap(better, worse, REFS, resamples=1000, seed=0)
    assert result.difference == pytest.approx(-100.0 * len(REFS) / REFS.sum())
    assert result.high < 0 and result.low <= result.difference <= result.high
    assert result.p_not_better == 0.0
    flipped = paired_bootstrap(worse, better, REFS, resamples=1000, seed=0)
    assert flipped.low > 0


def test_point_estimate_is_the_corpus_rate_difference_pooled_over_seeds():
    a = np.stack([ERRORS, ERRORS * 2])  # 2 seeds
    b = ERRORS[None, :]  # 1 run (e.g. the dense model)
    result = paired_bootstrap(a, b, REFS, resamples=10)
    expected = 100.0 * a.sum() / (2 * REFS.sum()) - 100.0 * b.sum() / REFS.sum()
    assert result.difference == pytest.approx(expected)


def test_average_over_languages_is_the_mean_of_their_differences():
    a = {"de": ERRORS + 1, "fr": ERRORS}
    b = {"de": ERRORS, "fr": ERRORS}
    units = {"de": REFS, "fr": REFS}
    both = paired_bootstrap(a, b, units, resamples=10)
    de = paired_bootstrap(a["de"], b["de"], REFS, resamples=10)
    assert both.difference == pytest.approx(de.difference / 2)


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 5, 50), rng.integers(0, 5, 50)
    units = rng.integers(5, 12, 50)
    first = paired_bootstrap(a, b, units, resamples=2000, seed=7)
    assert paired_bootstrap(a, b, units, resamples=2000, seed=7) == first
    other = paired_bootstrap(a, b, units, resamples=2000, seed=8)
    assert other.difference == first.difference and (other.low, other.high) != (first.low, first.high)


def test_mismatched_utterances_are_refused():
    with pytest.raises(ValueError):
        paired_bootstrap(ERRORS, ERRORS[:-1], REFS)
    with pytest.raises(ValueError):
        paired_bootstrap({"de": ERRORS}, {"fr": ERRORS}, {"de": REFS})


def test_per_utterance_counts_add_up_to_the_scorers_totals():
    refs = ["a b c d", "x y", "p q r", "only"]
    hyps = ["a x c", "x y z w", "p q r", ""]
    errors, units = per_utterance_counts("wer", refs, hyps)
    assert list(errors) == [2, 2, 0, 1] and list(units) == [4, 2, 3, 1]
    totals = score_words(refs, hyps)
    assert errors.sum() == totals.substitutions + totals.deletions + totals.insertions
    assert units.sum() == totals.ref_units
    phone_refs, phone_hyps = [["a", "b"], ["c"]], [["a"], ["c", "d"]]
    errors, units = per_utterance_counts("per", phone_refs, phone_hyps)
    assert list(errors) == [1, 1] and units.sum() == score_phones(phone_refs, phone_hyps).ref_units


def test_utterance_error_files_round_trip(tmp_path):
    counts = UtteranceErrors(("u1", "u2"), np.array([1, 0]), np.array([4, 3]))
    write_utterance_errors(tmp_path / "utt_errors.wer.tsv", counts)
    back = read_utterance_errors(tmp_path / "utt_errors.wer.tsv")
    assert back.ids == counts.ids and list(back.errors) == [1, 0] and list(back.ref_units) == [4, 3]
    assert back.error_rate == pytest.approx(100 / 7)


def test_utterance_errors_of_a_decode_add_up_to_its_results(tiny_model, tiny_data, tmp_path):
    from asrprune.decoding.decode_dir import decode_data_dir
    from asrprune.scoring.bootstrap import utterance_errors

    data_dir = tiny_data["test"][0]
    rows = decode_data_dir(tiny_model.checkpoint, data_dir, tmp_path / "decode",
                           lexicon_path=tiny_data["lexicon"]["de"])
    by_metric = {"per": rows[0].counts, "wer": rows[1].counts}
    for metric, totals in by_metric.items():
        counts = utterance_errors(tmp_path / "decode", data_dir, metric)
        assert int(counts.errors.sum()) == totals.substitutions + totals.deletions + totals.insertions
        assert int(counts.ref_units.sum()) == totals.ref_units and len(counts.ids) == totals.sentences
        assert (tmp_path / "decode" / f"utt_errors.{metric}.tsv").is_file()
        cached = utterance_errors(tmp_path / "decode", data_dir, metric)
        assert cached.ids == counts.ids and list(cached.errors) == list(counts.errors)


def test_paired_errors_reads_each_decoding_and_names_one_that_covers_other_utterances(tmp_path):
    from asrprune.scoring.bootstrap import paired_errors

    def decoding(name: str, rows: str):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "utt_errors.per.tsv").write_text(rows)  # the cache utterance_errors reads without hypotheses
        return folder

    a = [decoding("a0", "u1\t1\t10\nu2\t3\t5\n"), decoding("a1", "u1\t2\t10\nu2\t0\t5\n")]
    b = [decoding("b0", "u1\t4\t10\nu2\t4\t5\n")]
    errors_a, errors_b, units = paired_errors(a, b, tmp_path / "data", "per")
    assert [list(e) for e in errors_a] == [[1, 3], [2, 0]] and [list(e) for e in errors_b] == [[4, 4]]
    assert list(units) == [10, 5]
    other = decoding("b1", "u1\t4\t10\nu3\t4\t5\n")
    with pytest.raises(ValueError, match="b1: decoded other utterances"):
        paired_errors(a, [other], tmp_path / "data", "per")
