"""The multi-seed pathways report: mean ± std over seeds and paired bootstrap CIs against the best DAP variant,
from fake per-seed result files and decodes (asrprune.pruning.masking.report)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from asrprune.data.kaldi_dir import Utterance, write_data_dir
from asrprune.pruning.masking.report import (
    best_dap,
    collect_seeds,
    group_runs,
    seed_table,
    write_seed_report,
)

LANGS = ["de", "fr"]
REFS = {lang: [f"w{i} w{i + 1} w{i + 2} w{i + 3}" for i in range(20)] for lang in LANGS}


def _data(root: Path) -> Path:
    for lang in LANGS:
        write_data_dir(root / f"test_{lang}", [
            Utterance(f"spk1-{lang}{i:03d}", "/dev/null", text, "spk1", lang, 1.0, tuple(text.replace(" ", "")))
            for i, text in enumerate(REFS[lang])])
    return root


def _run(exp: Path, seed: int, sparsity: float, method: str, wer: dict, drop_words: int = 0,
         multilingual: bool = True) -> None:
    """A result.json, and decodes whose hypotheses drop the last ``drop_words`` words of every utterance."""
    out = exp / f"seed{seed}" / ("dense" if method == "dense" else f"sparsity{round(sparsity * 100)}/{method}")
    for lang in LANGS:
        decode = out / f"decode_test_{lang}"
        decode.mkdir(parents=True)
        hyps = [" ".join(t.split()[:len(t.split()) - drop_words]) for t in REFS[lang]]
        ids = [f"spk1-{lang}{i:03d}" for i in range(len(hyps))]
        (decode / "hyp.text").write_text("".join(f"{i} {h}\n" for i, h in zip(ids, hyps)))
        (decode / "hyp.phones").write_text("".join(f"{i} {' '.join(h.replace(' ', ''))}\n" for i, h in zip(ids, hyps)))
    record = {"per": {lang: v + 1 for lang, v in wer.items()}, "wer": wer, "steps": 160, "train_seconds": 120.0,
              "multilingual": multilingual, "masks": None, "method": method, "sparsity": 0.0 if method == "dense" else sparsity,
              "languages": LANGS}
    (out / "result.json").write_text(json.dumps(record))


@pytest.fixture
def exp(tmp_path):
    exp = tmp_path / "exp"
    _run(exp, 0, 0.0, "dense", {"de": 5.0, "fr": 6.0})
    for seed, (a, b) in enumerate([(10.0, 20.0), (12.0, 22.0), (14.0, 24.0)]):
        _run(exp, seed, 0.7, "dap_middle_saliency", {"de": a, "fr": b}, drop_words=0)
        _run(exp, seed, 0.7, "dap_middle_magnitude", {"de": a + 5, "fr": b + 5}, drop_words=1)
        _run(exp, seed, 0.7, "omp", {"de": a + 1, "fr": b + 1}, drop_words=0, multilingual=False)
        _run(exp, seed, 0.7, "adaptive", {"de": a + 2, "fr": b + 2}, drop_words=1, multilingual=False)
    _run(exp, 0, 0.5, "omp", {"de": 8.0, "fr": 9.0}, multilingual=False)
    for lang, commit in [("de", "0123456789abcdef"), ("fr", "fedcba9876543210")]:  # a monolingual run's stages
        (exp / f"seed0/sparsity70/adaptive/{lang}").mkdir()
        (exp / f"seed0/sparsity70/adaptive/{lang}/train_summary.json").write_text(
            json.dumps({"provenance": {"commit": commit}}))
    (exp / "seed7").mkdir()  # a seed not started yet: left out
    (exp / "seeds.txt").write_text("not a seed folder")
    return exp


def test_mean_and_std_over_seeds(exp):
    groups = group_runs(collect_seeds(exp))
    assert sorted(collect_seeds(exp)) == [0, 1, 2]
    table = seed_table(groups, "wer", LANGS)
    lines = {tuple(c.strip() for c in line.split("|")[1:3]): line for line in table.splitlines()[2:]}
    saliency = lines[("70%", "dap_middle_saliency")].split("|")
    assert saliency[3:7] == ["0,1,2", "12.0 ± 2.0", "22.0 ± 2.0", "17.0 ± 2.0"]
    assert lines[("50%", "omp")].split("|")[3:7] == ["0", "8.0", "9.0", "8.5"]  # one seed: no std
    assert lines[("0%", "dense")].split("|")[-2] == "2.0"  # train minutes
    assert best_dap(groups, 0.7, "wer") == "dap_middle_saliency"
    assert best_dap(groups, 0.5, "wer") is None


def test_report_with_bootstrap(exp, tmp_path):
    record = {"commit": "abc1234", "command": "stage 2", "date": "today", "machine": "m", "torch": "2",
              "other_load": "none"}
    summary = write_seed_report(exp, tmp_path / "results", _data(tmp_path / "data"), metrics=("wer",),
                                resamples=200, provenance=record)
    rows = {row["method"]: row for row in summary["bootstrap"]["wer"]}
    assert set(rows) == {"dap_middle_magnitude", "omp", "adaptive", "dense"}  # no reference DAP run at 50 %
    assert all(row["reference"] == "dap_middle_saliency" for row in rows.values())
    # identical decodes: a degenerate interval at 0; one word dropped of every 4: +25 points, CI strictly above 0
    assert (rows["omp"]["average"]["low"], rows["omp"]["average"]["high"]) == (0.0, 0.0)
    assert rows["dap_middle_magnitude"]["average"]["difference"] == pytest.approx(25.0)
    assert rows["dap_middle_magnitude"]["languages"]["de"]["low"] > 0
    assert rows["omp"]["seeds"] == [0, 1, 2] and rows["dense"]["seeds"] == [0, 1, 2]
    text = (tmp_path / "results" / "results_seeds.md").read_text()
    assert "12.0 ± 2.0" in text and "+25.00 [+25.00, +25.00]*" in text
    # the monolingual baselines against adaptive masking: omp keeps every word, adaptive drops one of four
    adaptive = summary["bootstrap_adaptive"]["wer"]
    assert [(r["method"], r["reference"], r["seeds"]) for r in adaptive] == [("omp", "adaptive", [0, 1, 2])]
    assert adaptive[0]["average"]["difference"] == pytest.approx(-25.0) and adaptive[0]["average"]["high"] < 0
    assert summary["trained_at_commits"] == ["0123456", "fedcba9"] and "commit(s) 0123456, fedcba9" in text
    assert summary["provenance"] == record and "Provenance: commit `abc1234`" in text
    assert (tmp_path / "results" / "metric_vs_sparsity_seeds.png").stat().st_size > 0
    # per-utterance counts are cached next to each decode
    assert (exp / "seed1/sparsity70/omp/decode_test_fr/utt_errors.wer.tsv").is_file()
    again = write_seed_report(exp, tmp_path / "results", tmp_path / "data", metrics=("wer",), resamples=200)
    assert again["bootstrap"] == summary["bootstrap"]
