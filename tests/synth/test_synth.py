"""Tests of the synthetic corpus generator (asrprune.synth: corpus, voices, rooms, noise, channels, sentences) on a
tiny de + zh corpus with a transfer test split."""
from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asrprune.corpora.commonvoice import import_commonvoice
from asrprune.phonology.normalise import is_han
from asrprune.synth import (
    channels, conditions, corpus as synth, espeak, layouts as synth_layouts, noise, rooms, sentences, voices,
)

TINY = dict(langs=("de", "zh"), train_utts=6, dev_utts=2, test_utts=2, transfer_utts=3, speakers=(2, 1, 1, 1),
            top_n=500, progress=False)
CV_DE = Path(synth_layouts.CV_RELEASE) / "de"
CV_DE_TRANSFER = Path(synth_layouts.CV_TRANSFER_RELEASE) / "de"
RATE = espeak.ESPEAK_SAMPLE_RATE


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
        assert 0.5 < len(samples) / rate < 10 and 0.03 < np.abs(samples).max() < 1.0  # peaks -26..-1 dBFS


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
        families = {}
        for speaker in summary["languages"][lang]["speakers"]:
            families.setdefault(speaker["split"], set()).add(voices.variant_family(speaker["variant"]))
        assert sorted(families) == sorted(synth.ALL_SPLITS)
        pools = {pool: set().union(*(families[s] for s in synth.ALL_SPLITS if voices.SPLIT_POOL[s] == pool))
                 for pool in voices.POOL_SHARES}
        assert sum(map(len, pools.values())) == len(set().union(*pools.values()))  # no family in two pools
        assert families["transfer"] == families["test"]  # the held-out pool speaks both test splits


def test_summary_records_counts_hours_and_parameters(corpus):
    summary = json.loads((corpus / synth.SUMMARY_FILE).read_text())
    de = summary["languages"]["de"]
    assert de["complete"] and de["params"]["seed"] == 0 and de["params"]["snr_db"] == [10.0, 30.0]
    assert {s: v["utterances"] for s, v in de["splits"].items()} == {"train": 6, "dev": 2, "test": 2, "transfer": 3}
    clip_hours = sum(soundfile.info(p).duration for p in (corpus / CV_DE / "clips").iterdir()) / 3600
    assert de["splits"]["train"]["hours"] + de["splits"]["dev"]["hours"] + de["splits"]["test"]["hours"] == \
        pytest.approx(clip_hours, abs=3e-4)
    transfer_hours = sum(soundfile.info(p).duration for p in (corpus / CV_DE_TRANSFER / "clips").iterdir()) / 3600
    assert de["splits"]["transfer"]["hours"] == pytest.approx(transfer_hours, abs=2e-4)
    assert de["splits"]["transfer"]["utterances"] == 3 and de["transfer_path"] == CV_DE_TRANSFER.as_posix()
    assert summary["total_utterances"] == 26
    assert sum(de["noise_kinds_used"].values()) == 13


def test_same_seed_same_corpus_different_seed_different(corpus, tmp_path):
    again = tmp_path / "again"
    synth.synthesise(again, seed=0, jobs=1, **TINY)
    originals = audio_files(corpus)
    assert [p.relative_to(corpus) for p in originals] == [p.relative_to(again) for p in audio_files(again)]
    for path in originals:
        assert path.read_bytes() == (again / path.relative_to(corpus)).read_bytes(), path
    for text in (CV_DE / "validated.tsv", CV_DE_TRANSFER / "test.tsv",
                 synth_layouts.AISHELL_ROOT / synth_layouts.AISHELL_TRANSCRIPT,
                 synth_layouts.AISHELL_TRANSFER_ROOT / synth_layouts.AISHELL_TRANSCRIPT):
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


@pytest.mark.parametrize("kind", noise.NOISE_KINDS)
def test_add_noise_hits_target_snr(kind):
    rate = 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    talkers = [np.sin(2 * np.pi * f * np.arange(5000) / rate) * np.hanning(5000) for f in (150, 230, 310)]
    for target in (0.0, 7.5, 20.0):
        degradation = noise.Degradation(kind, snr_db=target, lead_silence_s=0.0, trail_silence_s=0.0, noise_seed=3)
        added = noise.add_noise(tone, rate, degradation, talkers) - tone
        measured = 10 * np.log10(np.sum(tone.astype(np.float64) ** 2) / np.sum(added.astype(np.float64) ** 2))
        assert abs(measured - target) < 0.5


@pytest.mark.parametrize("kind, slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0), ("blue", 1.0)])
def test_noise_colour_has_its_spectral_slope(kind, slope):
    samples = noise.colored_noise(kind, 2**16, np.random.default_rng(1))
    power = np.abs(np.fft.rfft(samples)) ** 2
    frequencies = np.fft.rfftfreq(len(samples))
    band = (frequencies > 1e-3) & (frequencies < 0.4)
    fitted = np.polyfit(np.log10(frequencies[band]), np.log10(power[band]), 1)[0]
    assert fitted == pytest.approx(slope, abs=0.1)
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) == pytest.approx(1.0, abs=1e-3)


def test_hum_is_mains_harmonics_and_crackle_is_impulsive():
    rate = 16000
    hum = noise.hum_noise(rate, rate, np.random.default_rng(2))
    spectrum = np.abs(np.fft.rfft(hum))  # 1 Hz bins
    strongest = set(np.argsort(spectrum)[-3:])
    assert strongest in ({50, 100, 150}, {60, 120, 180})
    crackle = noise.crackle_noise(rate, rate, np.random.default_rng(2)).astype(np.float64)
    assert np.mean(crackle**4) / np.mean(crackle**2) ** 2 > 10  # kurtosis; Gaussian noise has 3
    assert np.mean(np.abs(crackle) < 0.01) > 0.5  # silent between the clicks


def test_pad_adds_the_silences():
    speech = np.ones(1000, dtype=np.float32)
    degradation = noise.Degradation("white", 10.0, lead_silence_s=0.25, trail_silence_s=0.125, noise_seed=0)
    padded = noise.pad(speech, 16000, degradation)
    assert len(padded) == 1000 + 4000 + 2000 and padded[:4000].max() == padded[-2000:].max() == 0


def test_interleaved_bands_are_disjoint_and_cover_the_range():
    setting = conditions.Interleaved(1.0, 6.0)
    assert setting.intervals(conditions.SEEN) == ((1.0, 2.0), (3.0, 4.0), (5.0, 6.0))
    assert setting.intervals(conditions.UNSEEN) == ((2.0, 3.0), (4.0, 5.0))
    rng = np.random.default_rng(0)
    for condition in conditions.CONDITIONS:
        assert {setting.condition_of(setting.draw(rng, condition)) for _ in range(200)} == {condition}


def test_transfer_split_uses_only_settings_training_never_uses(corpus):
    """Plan the tiny corpus again (no audio) and check every utterance's voice, room, channel and noise."""
    summary = json.loads((corpus / synth.SUMMARY_FILE).read_text())
    params = summary["languages"]["de"]["params"]
    pools = voices.variant_pools(espeak.installed_variants(), synth._rng(0, "variants"))
    assert set().union(*map(set, pools.values())) <= set(espeak.installed_variants())
    families = {pool: {voices.variant_family(name) for name, _ in variants} for pool, variants in pools.items()}
    assert families["train"].isdisjoint(families["dev"] | families["held_out"])
    assert families["dev"].isdisjoint(families["held_out"])
    assert {"klatt"} <= set().union(*families.values()) and len(pools["train"]) >= 30
    plans = synth.planned_utterances(corpus, "de")
    clips = {split: {p.clip for p in split_plans} for split, split_plans in plans.items()}
    for split in ("test", "transfer"):
        assert len(clips[split]) == params["utterances"][split]
    used = {split: {"variants": set(), "rooms": set(), "codecs": set(), "kinds": set()} for split in plans}
    for split, split_plans in plans.items():
        condition = conditions.SPLIT_CONDITION[split]
        for plan in split_plans:
            assert voices.FORMANT_SHIFT_RATIO.condition_of(plan.speaker.shape.formant_shift_ratio) == condition
            assert voices.PITCH_RANGE_FACTOR.condition_of(plan.speaker.shape.pitch_range_factor) == condition
            assert {voices.RATE_SPAN_FACTOR.condition_of(f) for _, f in plan.rate_spans} == {condition}
            channel = plan.channel
            for setting, value in (
                (channels.LOWPASS_HZ, channel.lowpass_hz), (channels.HIGHPASS_HZ, channel.highpass_hz),
                (channels.CLIP_DB, channel.clip_db), (channels.PEAK_DBFS, channel.peak_dbfs),
                (channels.MP3_VBR_QUALITY, channel.mp3_vbr_quality),
            ):
                assert value is None or setting.condition_of(value) == condition
            used[split]["variants"].add(plan.speaker.variant)
            used[split]["rooms"].add(None if plan.room is None else synth.room_bank(0, condition)[plan.room][0])
            used[split]["codecs"].add(channel.codec)
            used[split]["kinds"].add(plan.degradation.kind)
    seen = {key: set().union(*(used[s][key] for s in synth.SPLITS)) for key in used["train"]}
    for key in ("rooms", "kinds"):  # rooms: None is a dry (close-talk) clip, in every split alike
        assert used["transfer"][key] - {None} and (used["transfer"][key] - {None}).isdisjoint(seen[key] - {None}), key
    # voices: the transfer speakers read with the test speakers' held-out variants, speaker by speaker
    assert used["transfer"]["variants"].isdisjoint(used["train"]["variants"] | used["dev"]["variants"])
    speakers = {split: list({p.speaker: None for p in plans[split]}) for split in ("test", "transfer")}
    assert [s.variant for s in speakers["transfer"]] == [s.variant for s in speakers["test"]]
    assert [s.shape for s in speakers["transfer"]] != [s.shape for s in speakers["test"]]
    assert used["transfer"]["codecs"] == {"mp3"}  # at quality bands no seen clip uses
    for condition in conditions.CONDITIONS:
        for room, _ in synth.room_bank(0, condition):
            assert rooms.RT60_S.condition_of(room.rt60_s) == condition
            assert rooms.MIC_DISTANCE_M.condition_of(room.mic_distance_m) == condition
    assert summary["languages"]["de"]["splits"]["transfer"]["rooms"] and all(
        r.startswith("U") for r in summary["languages"]["de"]["splits"]["transfer"]["rooms"])


def test_importer_reads_the_transfer_release_as_commonvoice(corpus, tmp_path):
    reports = import_commonvoice(corpus / synth_layouts.CV_TRANSFER_RELEASE, "de", tmp_path)
    assert {split: report.kept for split, report in reports.items()} == {"train": 0, "dev": 0, "test": 3}
    rows = [dict(zip(synth_layouts.CV_HEADER, row)) for row in read_tsv(corpus / CV_DE_TRANSFER / "test.tsv")[1:]]
    texts = dict(line.split(" ", 1) for line in (tmp_path / "test_de" / "text").read_text().splitlines())
    assert sorted(texts) == sorted(f"{r['client_id']}-{Path(r['path']).stem}" for r in rows)
    main_rows = read_tsv(corpus / CV_DE / "validated.tsv")[1:]
    main_words = {w for row in main_rows for w in row[3].rstrip(".").lower().split()}
    transfer_words = {w for r in rows for w in r["sentence"].rstrip(".").lower().split()}
    assert transfer_words <= main_words  # every word is in the lexicon the main release's import builds


def test_band_limit_and_gsm_remove_energy_above_the_cutoff():
    signal = np.random.default_rng(0).standard_normal(RATE).astype(np.float32)
    frequencies = np.fft.rfftfreq(RATE, 1 / RATE)

    def power_db(samples, low, high):
        band = (frequencies >= low) & (frequencies < high)
        return 10 * np.log10(np.mean(np.abs(np.fft.rfft(samples))[band] ** 2))

    limited = channels.band_limit(signal, RATE, 300.0, 4000.0)
    assert power_db(limited, 1000, 3000) - power_db(limited, 8000, 11000) > 40  # 48 dB/octave above 4 kHz
    assert power_db(limited, 1000, 3000) - power_db(limited, 20, 80) > 40
    gsm = channels.apply_channel(signal, RATE, channels.Channel(None, None, None, "gsm", None, -3.0))
    assert power_db(gsm, 500, 3000) - power_db(gsm, 5000, 11000) > 30
    assert len(gsm) == len(signal) and np.abs(gsm).max() == pytest.approx(10 ** (-3 / 20), rel=1e-4)


def test_clipping_bounds_the_amplitude():
    tone = np.sin(2 * np.pi * 200 * np.arange(RATE) / RATE).astype(np.float32)
    clipped = channels.clip(tone, 6.0)
    assert np.abs(clipped).max() == 1.0
    assert np.mean(np.abs(clipped) == 1.0) > 0.3  # flat tops: a sine at +6 dB is above 1 a third of the time
    out = channels.apply_channel(tone, RATE, channels.Channel(None, None, 6.0, "none", None, -10.0))
    assert np.abs(out).max() == pytest.approx(10 ** (-10 / 20), rel=1e-4)


def test_mp3_channel_keeps_length_and_changes_the_samples():
    tone = (0.5 * np.sin(2 * np.pi * 300 * np.arange(RATE) / RATE)).astype(np.float32)
    out = channels.apply_channel(tone, RATE, channels.Channel(None, None, None, "mp3", 9.0, -6.0))
    assert len(out) == len(tone) and not np.allclose(out, channels.apply_channel(
        tone, RATE, channels.Channel(None, None, None, "none", None, -6.0)), atol=1e-4)


def test_room_lengthens_the_decay():
    room = rooms.draw_room(np.random.default_rng(0), conditions.SEEN, "S01")
    rir = rooms.simulate_rir(room, RATE)
    assert np.abs(rir).max() == pytest.approx(1.0) and len(rir) > 0.05 * room.rt60_s * RATE
    burst = np.random.default_rng(1).standard_normal(RATE // 10).astype(np.float32)
    wet = rooms.reverberate(burst, rir)
    assert len(wet) == len(burst) + len(rir) - 1
    tail = wet[len(burst) + rooms.RIR_LEAD_SAMPLES:]
    window = int(0.05 * RATE)
    assert np.sum(tail[:window] ** 2) > 1e-3 * np.sum(wet[:len(burst)] ** 2)  # sound after the talker stopped
    assert np.sum(tail[:window] ** 2) > 10 * np.sum(tail[window:2 * window] ** 2) or room.rt60_s > 0.6  # decaying


def test_voice_change_and_rate_spans_do_what_they_say():
    speech = espeak.espeak_speech("Guten Morgen, wie geht es dir heute?", "de+m3", 170, 50)

    def centroid_hz(samples):
        power = np.abs(np.fft.rfft(samples)) ** 2
        return np.sum(np.fft.rfftfreq(len(samples), 1 / RATE) * power) / np.sum(power)

    higher = voices.change_voice(speech, RATE, voices.VoiceShape(1.18, 1.0), seed=1)
    lower = voices.change_voice(speech, RATE, voices.VoiceShape(0.87, 1.0), seed=1)
    assert len(higher) == len(lower) == len(speech)
    assert np.array_equal(higher, voices.change_voice(speech, RATE, voices.VoiceShape(1.18, 1.0), seed=1))
    assert centroid_hz(higher) > 1.1 * centroid_hz(lower)
    text = "Guten Morgen, wie geht es dir heute?"
    durations = {
        factor: len(espeak.espeak_speech(voices.rate_ssml(text, [(3, 1.0), (4, factor)]), "de+m3", 170, 50, ssml=True))
        for factor in (0.75, 1.3)
    }
    assert durations[0.75] > 1.15 * durations[1.3]
    assert voices.rate_ssml("a < b", [(1, 1.0), (2, 0.8)]) == \
        '<speak><prosody rate="100%">a</prosody> <prosody rate="80%">&lt; b</prosody></speak>'


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
        ["synth", "--out", "out", "--langs", "de,zh", "--train-utts", "de=50,zh=20", "--dev-utts", "7", "--snr-db", "0",
         "10", "--transfer-test", "de=5"]
    )
    assert args.func is synth._run_cli
    assert (args.transfer_utts, args.noise_kinds, args.transfer_noise_kinds) == (
        {"de": 5}, noise.SEEN_NOISE_KINDS, noise.UNSEEN_NOISE_KINDS)
    assert (args.langs, args.train_utts, args.dev_utts, args.snr_db) == (("de", "zh"), {"de": 50, "zh": 20}, 7, [0, 10])
    for bad in (["--langs", "de,xx"], ["--noise-kinds", "pink,rain"], ["--test-utts", "de:5"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["synth", "out", *bad])


def test_a_clip_praat_cannot_reshape_keeps_its_samples_and_other_praat_errors_stop(monkeypatch):
    """Praat's "Change gender" stops on some real clips (seen in the mini corpus: a German training clip with pitch
    range factor 1.63, "the real value --undefined-- cannot be represented in an integer"): that clip comes back
    unchanged rather than stopping the corpus; any other Praat error still stops it."""
    speech = np.linspace(-0.5, 0.5, RATE // 2, dtype=np.float32)
    real_call = voices.parselmouth.praat.call

    def failing(message):
        def call(*args):
            if "Change gender" in args:
                raise voices.parselmouth.PraatError(message)
            return real_call(*args)
        return call

    monkeypatch.setattr(voices.parselmouth.praat, "call", failing(
        "When rounding up the real value --undefined--, the result cannot be represented in an integer."))
    assert np.array_equal(voices.change_voice(speech, RATE, voices.VoiceShape(0.91, 1.63), seed=1), speech)
    monkeypatch.setattr(voices.parselmouth.praat, "call", failing("Out of memory."))
    with pytest.raises(voices.parselmouth.PraatError, match="Out of memory"):
        voices.change_voice(speech, RATE, voices.VoiceShape(0.91, 1.63), seed=1)


def test_every_pool_gets_both_genders_and_the_klatt_voices_are_separate_families():
    """espeak-ng has far fewer female variants than male ones; the pools are drawn per gender, so no split is left
    without one (for several seeds), and each Klatt voice is its own family."""
    assert voices.variant_family("klatt3") == "klatt3" and voices.variant_family("Gene2") == "gene"
    variants = espeak.installed_variants()
    for seed in range(5):
        pools = voices.variant_pools(variants, synth._rng(seed, "variants"))
        for split, pool in pools.items():
            assert {gender for _, gender in pool} == {"female", "male"}, (seed, split)
    klatt = [name for name, _ in variants if name.startswith("klatt")]
    assert len(klatt) >= 2 and len({voices.variant_family(name) for name in klatt}) == len(klatt)


def _buzz_with_a_dip(seconds_at: tuple[tuple[float, float], ...]) -> np.ndarray:
    """A harmonic buzz whose pitch is ``hz`` for ``seconds`` in turn, at 22.05 kHz."""
    f0 = np.concatenate([np.full(int(seconds * RATE), hz) for seconds, hz in seconds_at])
    phase = np.cumsum(2 * np.pi * f0 / RATE)
    return (0.3 * sum(np.sin(k * phase) / k for k in range(1, 20))).astype(np.float32)


def test_pitch_range_widening_stops_at_the_pitch_floor():
    import parselmouth
    sound = parselmouth.Sound(_buzz_with_a_dip(((0.6, 230.0), (0.3, 80.0), (0.6, 230.0))).astype(np.float64), RATE)
    bounded = voices.bounded_pitch_range_factor(sound, 1.7)
    assert bounded == pytest.approx(np.log(230 / voices.PITCH_FLOOR_HZ) / np.log(230 / 80), rel=0.03)
    assert voices.bounded_pitch_range_factor(sound, 1.1) == 1.1  # stays above the floor: unchanged
    assert voices.bounded_pitch_range_factor(sound, 0.6) == 0.6  # narrowing never lowers the floor
    assert voices.bounded_pitch_range_factor(parselmouth.Sound(np.zeros(RATE), RATE), 1.7) == 1.7  # no voice


def test_change_voice_finishes_on_the_clip_that_hung_praat():
    """The Italian f3 reading that made Praat's "Change gender" loop forever at pitch range factor 1.62 (it dips
    to 81 Hz under a 229 Hz median); in a child process, so a hang fails the test instead of the suite."""
    import subprocess
    import sys
    code = """
import numpy as np
from asrprune.synth import espeak, voices
text = ('<speak><prosody rate="82%">sua lettera vengono opere prospettiva è sa</prosody> '
        '<prosody rate="79%">lavorare dovrebbero particolare</prosody></speak>')
speech = espeak.espeak_speech(text, "it+f3", 200, 63, ssml=True)
out = voices.change_voice(speech, espeak.ESPEAK_SAMPLE_RATE, voices.VoiceShape(0.8858, 1.6175), seed=14617466)
assert out.shape == speech.shape and np.isfinite(out).all()
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
