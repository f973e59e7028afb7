"""Tests of the synthetic corpus generator (asrprune.synth: corpus, noise, sentences) on a tiny de + zh corpus."""
from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asrprune.phonology.normalise import is_han
from asrprune.synth import corpus as synth, layouts as synth_layouts, noise, sentences

TINY = dict(langs=("de", "zh"), train_utts=6, dev_utts=2, test_utts=2, speakers=(2, 1, 1), top_n=500,
            progress=False)
CV_DE = Path(synth_layouts.CV_RELEASE) / "de"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("synth")
    synth.synthesise(out_dir, seed=0, **TINY)
    return out_dir


def read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def audio_files(out_dir: Path) -> list[Path]:
    return sorted(p for p in out_dir.rglob("*") if p.suffix in (".mp3", ".wav"))


def test_commonvoice_tsvs_have_v17_header_and_columns(corpus):
    rows = {}
    for name in ("train", "dev", "test", "validated"):
        table = read_tsv(corpus / CV_DE / f"{name}.tsv")
        assert table[0] == list(synth_layouts.CV_HEADER)
        assert all(len(row) == 13 for row in table)
        rows[name] = [dict(zip(table[0], row)) for row in table[1:]]
    assert [len(rows[s]) for s in ("train", "dev", "test")] == [6, 2, 2]
    assert rows["validated"] == rows["train"] + rows["dev"] + rows["test"]
    for row in rows["validated"]:
        assert re.fullmatch(r"common_voice_de_\d{8}\.mp3", row["path"])
        assert re.fullmatch(r"[0-9a-f]{64}", row["client_id"])
        assert re.fullmatch(r"[0-9a-f]{64}", row["sentence_id"])
        assert row["locale"] == "de" and row["gender"] in ("male_masculine", "female_feminine")
        assert int(row["up_votes"]) - int(row["down_votes"]) >= 2
        words = row["sentence"].rstrip(".").split()
        assert row["sentence"][0].isupper() and row["sentence"].endswith(".") and 3 <= len(words) <= 10
        assert all(set(w.lower()) <= set("abcdefghijklmnopqrstuvwxyzäöüß") for w in words)
    assert len({row["path"] for row in rows["validated"]}) == 10
    assert len({row["sentence"] for row in rows["validated"]}) == 10


def test_commonvoice_clips_are_48khz_mono_mp3(corpus):
    durations = dict(read_tsv(corpus / CV_DE / "clip_durations.tsv")[1:])
    for row in read_tsv(corpus / CV_DE / "validated.tsv")[1:]:
        samples, rate = soundfile.read(corpus / CV_DE / "clips" / row[1], dtype="float32")
        assert rate == 48000 and samples.ndim == 1
        assert abs(len(samples) / rate * 1000 - int(durations[row[1]])) <= 1
        assert 0.5 < len(samples) / rate < 10 and 0.05 < np.abs(samples).max() < 1.0


def test_aishell_layout_and_transcript(corpus):
    root = corpus / synth_layouts.AISHELL_ROOT
    lines = (root / synth_layouts.AISHELL_TRANSCRIPT).read_text(encoding="utf-8").splitlines()
    assert lines == sorted(lines) and len(lines) == 10
    wavs = {p.stem: p for p in (root / "wav").glob("*/*/*.wav")}
    for line in lines:
        uttid, text = line.split(" ", 1)
        match = re.fullmatch(r"BAC009(S\d{4})W\d{4}", uttid)
        assert match and wavs[uttid].parent.name == match.group(1)
        words = text.split(" ")
        assert 3 <= len(words) <= 8 and all(w and all(is_han(ch) for ch in w) for w in words)
        info = soundfile.info(wavs[uttid])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert set(wavs) == {line.split(" ")[0] for line in lines}
    assert sorted(p.name for p in (root / "wav").iterdir()) == ["dev", "test", "train"]


def test_speakers_are_held_out(corpus):
    cv_speakers = {s: {row[0] for row in read_tsv(corpus / CV_DE / f"{s}.tsv")[1:]} for s in synth.SPLITS}
    zh_wavs = corpus / synth_layouts.AISHELL_ROOT / "wav"
    zh_speakers = {s: {p.name for p in (zh_wavs / s).iterdir()} for s in synth.SPLITS}
    for per_split in (cv_speakers, zh_speakers):
        assert [len(per_split[s]) for s in synth.SPLITS] == [2, 1, 1]
        assert not (per_split["train"] & per_split["dev"] or per_split["train"] & per_split["test"]
                    or per_split["dev"] & per_split["test"])
    summary = json.loads((corpus / synth.SUMMARY_FILE).read_text())
    for lang in ("de", "zh"):
        variants = [s["variant"] for s in summary["languages"][lang]["speakers"]]
        assert len(variants) == len(set(variants)) == 4


def test_summary_records_counts_hours_and_parameters(corpus):
    summary = json.loads((corpus / synth.SUMMARY_FILE).read_text())
    de = summary["languages"]["de"]
    assert de["complete"] and de["params"]["seed"] == 0 and de["params"]["snr_db"] == [5.0, 25.0]
    assert {s: v["utterances"] for s, v in de["splits"].items()} == {"train": 6, "dev": 2, "test": 2}
    clip_hours = sum(soundfile.info(p).duration for p in (corpus / CV_DE / "clips").iterdir()) / 3600
    assert de["splits"]["train"]["hours"] + de["splits"]["dev"]["hours"] + de["splits"]["test"]["hours"] == \
        pytest.approx(clip_hours, abs=3e-4)
    assert summary["total_utterances"] == 20
    assert sum(de["noise_kinds_used"].values()) == 10


def test_same_seed_same_corpus_different_seed_different(corpus, tmp_path):
    again = tmp_path / "again"
    synth.synthesise(again, seed=0, jobs=1, **TINY)
    originals = audio_files(corpus)
    assert [p.relative_to(corpus) for p in originals] == [p.relative_to(again) for p in audio_files(again)]
    for path in originals:
        assert path.read_bytes() == (again / path.relative_to(corpus)).read_bytes(), path
    for text in (CV_DE / "validated.tsv", synth_layouts.AISHELL_ROOT / synth_layouts.AISHELL_TRANSCRIPT):
        assert (corpus / text).read_text() == (again / text).read_text()

    other = tmp_path / "other"
    synth.synthesise(other, seed=1, **{**TINY, "langs": ("de",)})
    sentences_of = lambda root: [row[3] for row in read_tsv(root / CV_DE / "validated.tsv")[1:]]
    assert set(sentences_of(corpus)).isdisjoint(sentences_of(other))
    first_clip = lambda root: soundfile.read(root / CV_DE / "clips" / read_tsv(root / CV_DE / "train.tsv")[1][1])[0]
    assert not np.array_equal(first_clip(corpus)[:1000], first_clip(other)[:1000])


def test_rerun_keeps_clips_redoes_missing_and_refuses_other_parameters(corpus, tmp_path):
    out_dir = tmp_path / "copy"
    shutil.copytree(corpus, out_dir)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in audio_files(out_dir)}
    removed = sorted(before)[3]
    removed.unlink()
    summary = synth.synthesise(out_dir, seed=0, **TINY)
    assert summary == json.loads((corpus / synth.SUMMARY_FILE).read_text())
    for path, (mtime, content) in before.items():
        assert path.read_bytes() == content
        assert path == removed or path.stat().st_mtime_ns == mtime
    assert not list(out_dir.rglob("*.part")) and not list(out_dir.rglob("*.tmp"))

    with pytest.raises(synth.SynthError, match=r"de was made with other parameters \(differing: \['utterances'\]\)"):
        synth.synthesise(out_dir, seed=0, **{**TINY, "train_utts": 5})
    summary = synth.synthesise(out_dir, seed=0, force=True, **{**TINY, "langs": ("de",), "train_utts": 5})
    assert len(read_tsv(out_dir / CV_DE / "train.tsv")) == 6 and len(list((out_dir / CV_DE / "clips").iterdir())) == 9
    assert summary["languages"]["zh"]["params"]["utterances"]["train"] == 6  # other languages untouched


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "babble"])
def test_mix_at_snr_hits_target(kind):
    rng = np.random.default_rng(0)
    rate = 16000
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)
    if kind == "babble":
        talkers = [np.sin(2 * np.pi * f * np.arange(5000) / rate) * np.hanning(5000) for f in (150, 230, 310)]
        background = noise.babble_noise(talkers, rate, rng)
    else:
        background = noise.colored_noise(kind, rate, rng)
    for target in (0.0, 7.5, 20.0):
        added = noise.mix_at_snr(tone, background, target) - tone
        measured = 10 * np.log10(np.sum(tone**2) / np.sum(added**2))
        assert abs(measured - target) < 0.5


@pytest.mark.parametrize("kind, slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_noise_colour_has_its_spectral_slope(kind, slope):
    samples = noise.colored_noise(kind, 2**16, np.random.default_rng(1))
    power = np.abs(np.fft.rfft(samples)) ** 2
    frequencies = np.fft.rfftfreq(len(samples))
    band = (frequencies > 1e-3) & (frequencies < 0.4)
    fitted = np.polyfit(np.log10(frequencies[band]), np.log10(power[band]), 1)[0]
    assert fitted == pytest.approx(slope, abs=0.1)
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) == pytest.approx(1.0, abs=1e-3)


def test_degrade_pads_levels_and_keeps_snr():
    rate = 16000
    speech = 0.5 * np.sin(2 * np.pi * 300 * np.arange(rate) / rate).astype(np.float32)
    degradation = noise.Degradation("pink", snr_db=12.0, peak_dbfs=-6.0, lead_silence_s=0.25,
                                     trail_silence_s=0.125, noise_seed=7)
    out = noise.degrade(speech, rate, degradation)
    assert len(out) == rate + 4000 + 2000
    assert np.abs(out).max() == pytest.approx(10 ** (-6 / 20), rel=1e-4)
    padded = np.concatenate([np.zeros(4000), speech, np.zeros(2000)])
    unit_noise = noise.colored_noise("pink", len(out), np.random.default_rng(7))
    (speech_gain, noise_gain), *_ = np.linalg.lstsq(np.stack([padded, unit_noise], 1), out, rcond=None)
    measured = 10 * np.log10(speech_gain**2 * np.sum(padded**2) / (noise_gain**2 * np.sum(unit_noise**2)))
    assert measured == pytest.approx(12.0, abs=0.5)


def test_vocabulary_filters_fragments_and_weights_rarer_words():
    vocabulary = sentences.build_vocabulary("fr", top_n=500)
    assert "à" in vocabulary.words and "y" in vocabulary.words
    assert not {"l", "d", "qu", "1", "the"} & set(vocabulary.words)
    assert sum(vocabulary.dropped.values()) + len(vocabulary.words) == 500
    assert vocabulary.probabilities.sum() == pytest.approx(1.0)
    first, last = vocabulary.probabilities[0], vocabulary.probabilities[-1]
    assert 5 < first / last < 100  # flattened: frequency ** 0.5, not the raw ~500:1
    drawn = sentences.make_sentences(vocabulary, 20, np.random.default_rng(3))
    assert drawn == sentences.make_sentences(vocabulary, 20, np.random.default_rng(3))
    assert len(set(drawn)) == 20 and all(3 <= len(s) <= 10 for s in drawn)
    assert sentences.espeak_text(("中国", "人"), "zh") == "zhong1guo2 ren2"


def test_cli_parses_sizes_and_languages():
    parser = argparse.ArgumentParser(prog="asrprune")
    synth.register_cli(parser.add_subparsers())
    args = parser.parse_args(
        ["synth", "--out", "out", "--langs", "de,zh", "--train-utts", "de=50,zh=20", "--dev-utts", "7", "--snr-db", "0", "10"]
    )
    assert args.func is synth._run_cli
    assert (args.langs, args.train_utts, args.dev_utts, args.snr_db) == (("de", "zh"), {"de": 50, "zh": 20}, 7, [0, 10])
    for bad in (["--langs", "de,xx"], ["--noise-kinds", "pink,rain"], ["--test-utts", "de:5"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["synth", "out", *bad])
