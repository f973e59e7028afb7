"""Tests of the corpus importers (asrprune.corpora) on tiny corpora in the real layouts
(tests/helpers/corpus_fixtures.py)."""
from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile

import asrprune.corpora.aishell
import asrprune.corpora.common
import asrprune.corpora.commonvoice
import asrprune.corpora.hf_datasets
from asrprune.data.kaldi_dir import REQUIRED_FILES, DataDirError, read_data_dir, read_table
from asrprune.data.prep_report import PrepReport
from asrprune.phonology.lexicon import Lexicon
from tests.helpers.corpus_fixtures import (
    AISHELL_TRANSCRIPT,
    AISHELL_WAVS,
    CV_LANG,
    CV_MALFORMED_LINE,
    CV_NORMALISED_TEXT,
    CV_OLD_COLUMNS,
    CV_ROWS,
    HF_LANG,
    HF_ROWS,
    write_aishell,
    write_commonvoice_release,
    write_cv_split,
    write_hf_parquet,
    write_hf_saved,
)
from asrprune.corpora.aishell import import_aishell
from asrprune.corpora.common import Candidate, CorpusFormatError, kaldi_id, prepare_split
from asrprune.corpora.commonvoice import import_commonvoice
from asrprune.corpora.hf_datasets import import_hf_dataset


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, with its content."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def drop_reasons(data_dir: Path) -> list[tuple[str, str]]:
    """(uttid, reason) of each line of ``data_dir/dropped.tsv`` after its header."""
    lines = (data_dir / "dropped.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "uttid\treason\tdetail"
    return [tuple(line.split("\t")[:2]) for line in lines[1:]]


def assert_valid_data_dir(data_dir: Path, lang: str) -> list:
    """Check the data directory's invariants and return its utterances: every table sorted by id (C order),
    absolute 16 kHz mono wavs whose length is utt2dur, phones = the lexicon's transcription of the words."""
    for name in (*REQUIRED_FILES, "spk2utt"):
        keys = [line.split(" ", 1)[0] for line in (data_dir / name).read_text(encoding="utf-8").splitlines()]
        assert keys == sorted(keys, key=str.encode), name
    lexicon = Lexicon.load_or_empty(data_dir.parent / f"lang_{lang}" / "lexicon.txt")
    utterances = read_data_dir(data_dir)
    for utt in utterances:
        assert Path(utt.wav).is_absolute() and Path(utt.wav).parent == (data_dir / "wav").resolve()
        info = soundfile.info(utt.wav)
        assert (info.samplerate, info.channels) == (16000, 1)
        assert utt.duration == pytest.approx(info.frames / 16000, abs=1e-3)
        assert utt.lang == lang
        assert all(word in lexicon for word in utt.text.split())
        assert utt.phones and utt.phones == lexicon.transcribe(utt.text.split())
    return utterances


# --- Common Voice -------------------------------------------------------------------------------------------


def cv_uttid(row) -> str:
    return f"{row.client_id}-{Path(row.clip).stem}"


@pytest.fixture(scope="module")
def cv_import(tmp_path_factory):
    """A v17 release imported once: (release folder, output root, reports, seconds the import took)."""
    root = tmp_path_factory.mktemp("cv")
    release = write_commonvoice_release(root / "corpus")
    start = time.perf_counter()
    reports = import_commonvoice(release, CV_LANG, root / "out")
    return release, root / "out", reports, time.perf_counter() - start


def test_commonvoice_keeps_and_drops_each_row_for_its_reason(cv_import):
    _, out, reports, _ = cv_import
    assert set(reports) == {"train", "dev", "test"}
    for split, rows in CV_ROWS.items():
        expected_drops = {(cv_uttid(r), r.outcome) for r in rows if r.outcome != "kept"}
        if split == "train":
            expected_drops.add((f"train.tsv:{CV_MALFORMED_LINE}", "malformed row"))
        assert set(drop_reasons(out / f"{split}_de")) == expected_drops
        summary = json.loads((out / f"{split}_de" / "prep_summary.json").read_text())
        assert summary["kept"] == reports[split].kept == sum(r.outcome == "kept" for r in rows)
        assert summary["dropped_by_reason"] == dict(collections.Counter(reason for _, reason in expected_drops))


def test_commonvoice_drop_details_name_line_file_and_value(cv_import):
    _, out, reports, _ = cv_import
    details = {uttid: (reason, detail) for uttid, reason, detail in reports["train"].dropped}
    malformed = details[f"train.tsv:{CV_MALFORMED_LINE}"][1]
    assert malformed.endswith(f"train.tsv line {CV_MALFORMED_LINE}: 14 fields, header has 13")
    assert details["b2e1-common_voice_de_3"][1].endswith(
        "common_voice_de_3.mp3: cannot decode audio (corrupt, truncated or not an audio format libsndfile reads)"
    )
    assert details["b2e1-common_voice_de_32"][1].endswith("common_voice_de_32.mp3: empty file (0 bytes)")
    assert details["b2e1-common_voice_de_31"][1] == (
        "'3.' before more text: a German ordinal or a sentence end (raw text 'Am 3. Mai')"
    )
    assert details["c3d2-common_voice_de_5"][1].endswith("common_voice_de_5.mp3: no such file")
    assert details["c3d2-common_voice_de_6"][1] == "0.050 s < 0.1 s"
    assert details["c3d2-common_voice_de_7"][1] == "20.500 s > 20.0 s"
    assert details["a1f0-common_voice_de_8"][1] == "€ in 'das kostet fünf €'"


def test_commonvoice_data_dirs_hold_normalised_16khz_utterances(cv_import):
    _, out, _, _ = cv_import
    for split, rows in CV_ROWS.items():
        kept = {cv_uttid(r): r for r in rows if r.outcome == "kept"}
        utterances = assert_valid_data_dir(out / f"{split}_de", CV_LANG)
        assert [u.uttid for u in utterances] == sorted(kept, key=str.encode)
        for utt in utterances:
            assert utt.speaker == kept[utt.uttid].client_id
            assert utt.duration == pytest.approx(kept[utt.uttid].seconds, abs=1e-3)
    texts = read_table(out / "train_de" / "text")
    assert {uttid.split("-", 1)[1]: text for uttid, text in texts.items()} == CV_NORMALISED_TEXT
    assert read_table(out / "test_de" / "utt2dur")["f6a5-common_voice_de_20"] == "0.050"  # test: no duration filter
    assert (out / "lang_de" / "lexicon.txt").is_file()


def test_commonvoice_rerun_is_identical_and_decodes_only_what_failed(cv_import, monkeypatch):
    release, out, _, first_seconds = cv_import
    before = snapshot(out)
    decoded = []
    real_load_audio = asrprune.corpora.common.load_audio
    monkeypatch.setattr(asrprune.corpora.common, "load_audio", lambda path: decoded.append(path.name) or real_load_audio(path))
    start = time.perf_counter()
    import_commonvoice(release, CV_LANG, out)
    second_seconds = time.perf_counter() - start
    assert snapshot(out) == before
    assert decoded == ["common_voice_de_3.mp3", "common_voice_de_32.mp3"]  # corrupt and empty: no dump to reuse
    print(f"commonvoice import: first run {first_seconds:.2f} s, second run {second_seconds:.2f} s")
    assert second_seconds < first_seconds


def test_commonvoice_older_column_order_and_language_folder_give_the_same_data(cv_import, tmp_path):
    _, v17_out, _, _ = cv_import
    release = write_commonvoice_release(tmp_path / "corpus", columns=CV_OLD_COLUMNS)
    import_commonvoice(release / CV_LANG, CV_LANG, tmp_path / "out", splits=("train", "test"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["lang_de", "test_de", "train_de"]
    for split in ("train", "test"):
        for name in ("text", "utt2spk", "utt2dur", "phones"):
            old_columns_file, v17_file = (out / f"{split}_de" / name for out in (tmp_path / "out", v17_out))
            assert old_columns_file.read_bytes() == v17_file.read_bytes()
        assert drop_reasons(tmp_path / "out" / f"{split}_de") == drop_reasons(v17_out / f"{split}_de")


def test_commonvoice_tsv_without_sentence_column_fails_before_writing(tmp_path):
    release = write_commonvoice_release(tmp_path / "corpus", missing_column=("test", "sentence"))
    with pytest.raises(CorpusFormatError, match=r"de/test\.tsv: missing column 'sentence' \(header: client_id, path,"):
        import_commonvoice(release, CV_LANG, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_commonvoice_tsv_that_is_not_utf8_is_named_with_its_line(tmp_path):
    lang_dir = tmp_path / "de"
    write_cv_split(lang_dir, "train", [("a", "a.mp3", "Hallo")])
    write_cv_split(lang_dir, "dev", [("a", "a.mp3", "Hallo"), ("b", "b.mp3", "Grüße")], encoding="latin-1")
    expected = r"de/dev\.tsv:3: not UTF-8 \(byte b'\\xfc' at column 11\); convert the file to UTF-8"
    with pytest.raises(CorpusFormatError, match=expected):
        import_commonvoice(lang_dir, "de", tmp_path / "out", splits=("train", "dev"))
    assert not (tmp_path / "out").exists()  # every TSV is read before the good train split is written


def test_commonvoice_strips_a_bom_and_drops_rows_repeating_a_clip(tmp_path):
    lang_dir = tmp_path / "de"
    write_cv_split(lang_dir, "train", [("a", "x.mp3", "Hallo"), ("b", "x.mp3", "Welt")], encoding="utf-8-sig")
    write_cv_split(lang_dir, "test", [("c", "x.mp3", "Tag"), ("c", "y.mp3", "Nacht")])
    reports = import_commonvoice(lang_dir, "de", tmp_path / "out", splits=("train", "test"))
    assert (reports["train"].kept, reports["test"].kept) == (1, 1)
    first = "x.mp3 already on train.tsv:2"
    assert reports["train"].dropped == [("b-x", "duplicate clip", f"{lang_dir / 'train.tsv'}:3: {first}")]
    assert reports["test"].dropped == [("c-x", "duplicate clip", f"{lang_dir / 'test.tsv'}:2: {first}")]
    assert read_table(tmp_path / "out" / "train_de" / "utt2spk") == {"a-x": "a"}  # client_id found despite the BOM


def test_commonvoice_without_language_folder_names_what_it_expected(tmp_path):
    with pytest.raises(CorpusFormatError, match=r"no Common Voice language folder .*de/"):
        import_commonvoice(tmp_path, "de", tmp_path / "out")


# --- the shared pipeline ------------------------------------------------------------------------------------


def test_kaldi_id_replaces_whitespace_and_slashes():
    assert kaldi_id("spk 1", "clips/a b.mp3") == "spk_1-clips_a_b.mp3"


def test_read_table_names_file_line_and_byte_that_is_not_utf8(tmp_path):
    (tmp_path / "text").write_bytes(b"u1 hallo\nu2 gr\xfc\xdfe\n")
    with pytest.raises(DataDirError, match=r"text:2: not UTF-8 \(byte b'\\xfc' at column 6\)"):
        read_table(tmp_path / "text")


def test_prepare_split_drops_repeated_ids_and_words_without_pronunciation(tmp_path, monkeypatch):
    wav = tmp_path / "a.wav"
    soundfile.write(wav, [0.1, -0.1] * 4000, 16000)
    real_add_words = Lexicon.add_words
    monkeypatch.setattr(
        Lexicon, "add_words", lambda self, words, lang: {**real_add_words(self, words, lang), "welt": "g2p failed"}
    )
    candidates = [
        Candidate("s1-a", wav, "Hallo", "s1"),
        Candidate("s1-a", wav, "Hallo", "s1"),
        Candidate("s1-b", wav, "Hallo Welt", "s1"),
    ]
    report = PrepReport("train_de")
    report.drop("x", "malformed row", "from the importer")
    assert prepare_split(candidates, split="train", lang="de", out_root=tmp_path / "out", report=report) is report
    assert report.kept == 1
    assert report.dropped == [
        ("x", "malformed row", "from the importer"),
        ("s1-a", "duplicate utterance id", str(wav)),
        ("s1-b", "no pronunciation", "welt: g2p failed"),
    ]
    assert read_table(tmp_path / "out" / "train_de" / "text") == {"s1-a": "hallo"}


# --- AISHELL-1 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("archived", [False, True], ids=["extracted", "tar.gz"])
def test_aishell_keeps_transcribed_wavs_and_reports_the_rest(tmp_path, archived):
    root = write_aishell(tmp_path / "corpus", archived=archived)
    reports = import_aishell(root, tmp_path / "out")
    assert {split: report.kept for split, report in reports.items()} == {"train": 2, "dev": 1, "test": 1}
    assert [(u, r) for u, r, _ in reports["train"].dropped] == [
        ("BAC009S0002W0125", "no transcript"),
        ("BAC009S0002W0124", "missing audio"),
    ]
    for split, speakers in AISHELL_WAVS.items():
        utterances = assert_valid_data_dir(tmp_path / "out" / f"{split}_zh", "zh")
        expected = sorted(u for uttids in speakers.values() for u in uttids if u in AISHELL_TRANSCRIPT)
        assert [u.uttid for u in utterances] == expected
        for utt in utterances:
            assert utt.text == AISHELL_TRANSCRIPT[utt.uttid]  # word segmentation kept
            assert utt.speaker == utt.uttid[6:11]
    if archived:
        wav_root = root / "data_aishell" / "wav"
        assert sorted(p.name for p in wav_root.glob(".*.extracted")) == [
            ".S0002.tar.gz.extracted", ".S0724.tar.gz.extracted", ".S0764.tar.gz.extracted"
        ]


def test_aishell_rerun_is_identical_and_extracts_nothing(tmp_path, monkeypatch):
    root = write_aishell(tmp_path / "corpus", archived=True)
    import_aishell(root, tmp_path / "out", splits=("dev",))
    before = snapshot(tmp_path / "out")

    def refuse(*args, **kwargs):
        raise AssertionError("archive opened again")

    monkeypatch.setattr(asrprune.corpora.aishell.tarfile, "open", refuse)
    monkeypatch.setattr(asrprune.corpora.common, "load_audio", refuse)
    import_aishell(root, tmp_path / "out", splits=("dev",))
    assert snapshot(tmp_path / "out") == before


def test_aishell_transcript_line_without_speaker_folder_is_a_counted_drop(tmp_path):
    root = write_aishell(tmp_path / "corpus", archived=False)
    with open(root / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt", "a", encoding="utf-8") as f:
        f.write("BAC009S0999W0001 没有 文件夹\n")
    reports = import_aishell(root, tmp_path / "out", splits=("dev", "test"))
    wav_root = root / "data_aishell" / "wav"
    assert reports["dev"].dropped == [
        ("BAC009S0999W0001", "no speaker folder", f"no {wav_root}/{{train,dev,test}}/S0999")
    ]
    assert reports["test"].dropped == []  # counted once, in the first split imported
    assert ("BAC009S0999W0001", "no speaker folder") in drop_reasons(tmp_path / "out" / "dev_zh")


def test_aishell_transcript_that_is_not_utf8_is_named_with_its_line(tmp_path):
    root = write_aishell(tmp_path / "corpus", archived=False)
    transcript = root / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt"
    transcript.write_bytes(transcript.read_bytes() + "BAC009S0002W0126 限购\n".encode("gbk"))
    line = len(AISHELL_TRANSCRIPT) + 1
    expected = rf"aishell_transcript_v0\.8\.txt:{line}: not UTF-8 \(byte b'\\xcf' at column 18\)"
    with pytest.raises(CorpusFormatError, match=expected):
        import_aishell(root, tmp_path / "out")


def test_aishell_without_transcript_names_the_file(tmp_path):
    with pytest.raises(CorpusFormatError, match=r"aishell_transcript_v0\.8\.txt: no such file"):
        import_aishell(tmp_path, tmp_path / "out")


# --- Hugging Face datasets ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return write_hf_saved(root), write_hf_parquet(root), root / "cache"


def hf_expected_kept(split: str) -> list:
    return [r for r in HF_ROWS[split] if r.outcome == "kept"]


def test_hf_saved_dataset_with_speaker_and_id_columns(hf_sources, tmp_path):
    saved, _, _ = hf_sources
    reports = import_hf_dataset(saved, HF_LANG, tmp_path / "out", speaker_column="client_id", id_column="id")
    assert set(reports) == {"train", "dev", "test"}  # validation -> dev, "other" skipped
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dev_de", "lang_de", "test_de", "train_de"]
    assert [(u, r) for u, r, _ in reports["train"].dropped] == [
        ("spk2-u2", "empty text"),
        ("spk2-u3", "unreadable audio"),
    ]
    for split, source_split in (("train", "train"), ("dev", "validation"), ("test", "test")):
        utterances = assert_valid_data_dir(tmp_path / "out" / f"{split}_de", HF_LANG)
        kept = hf_expected_kept(source_split)
        assert [u.uttid for u in utterances] == sorted(f"{r.client_id}-{r.id}" for r in kept)
        assert [u.speaker for u in utterances] == [r.client_id for r in kept]
        assert all(u.duration == pytest.approx(1.0, abs=2e-3) for u in utterances)  # 48 kHz stereo mp3, 44.1 kHz flac


def test_hf_parquet_folder_and_file_without_speaker_column(hf_sources, tmp_path):
    _, parquet, cache = hf_sources
    reports = import_hf_dataset(parquet, HF_LANG, tmp_path / "out", cache_dir=cache)
    assert {split: r.kept for split, r in reports.items()} == {"train": 3, "dev": 1, "test": 1}
    utt2spk = read_table(tmp_path / "out" / "train_de" / "utt2spk")
    assert utt2spk == {f"train-{i:06d}": f"train-{i:06d}" for i in (0, 1, 4)}  # each utterance its own speaker
    texts = read_table(tmp_path / "out" / "train_de" / "text")
    assert list(texts.values()) == ["guten tag", "wie geht es dir", "bis morgen"]

    single_file = parquet / "data" / "test-00000-of-00001.parquet"
    single = import_hf_dataset(single_file, HF_LANG, tmp_path / "single", cache_dir=cache)
    assert list(single) == ["train"]  # a lone parquet file is one split, named train
    assert read_table(tmp_path / "single" / "train_de" / "text") == {"train-000000": "das buch ist rot"}


def test_hf_missing_column_names_it_and_the_available_ones(hf_sources, tmp_path):
    saved, _, _ = hf_sources
    expected = r"split 'train': no column 'transcript' \(available: id, client_id, sentence, audio\)"
    with pytest.raises(CorpusFormatError, match=expected):
        import_hf_dataset(saved, HF_LANG, tmp_path / "out", text_column="transcript")
    assert not (tmp_path / "out").exists()


def test_hf_split_map_without_matching_split_is_an_error(hf_sources, tmp_path):
    saved, _, _ = hf_sources
    expected = r"none of the splits train, validation, test, other is in the split map"
    with pytest.raises(CorpusFormatError, match=expected):
        import_hf_dataset(saved, HF_LANG, tmp_path / "out", split_map={"dev_clean": "dev"})


# --- command line -------------------------------------------------------------------------------------------


def cli_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asrprune")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in (asrprune.corpora.commonvoice, asrprune.corpora.aishell, asrprune.corpora.hf_datasets):
        module.register_cli(subparsers)
    return parser


def test_cli_subcommands_run_the_importers(tmp_path, hf_sources):
    parser = cli_parser()
    root = write_aishell(tmp_path / "corpus", archived=False)
    args = parser.parse_args(["prep-aishell", "--root", str(root), "--out", str(tmp_path / "out"), "--splits", "test"])
    reports = args.func(args)
    assert list(reports) == ["test"] and reports["test"].kept == 1

    saved, _, _ = hf_sources
    args = parser.parse_args(
        ["prep-hf", "--source", str(saved), "--lang", "de", "--out", str(tmp_path / "hf"), "--split-map", "other=test"]
    )
    assert args.func(args)["test"].kept == 1
    assert read_table(tmp_path / "hf" / "test_de" / "text") == {"test-000000": "nur ein satz"}

    args = parser.parse_args(["prep-commonvoice", "--release", "r", "--lang", "de", "--out", "o", "--splits", "dev"])
    assert (args.release, args.splits, args.min_duration, args.max_duration) == (Path("r"), ["dev"], 0.1, 20.0)
    with pytest.raises(SystemExit):
        parser.parse_args(["prep-hf", "--source", "s", "--lang", "de", "--out", "o", "--split-map", "nonsense"])


def test_cli_import_error_is_one_line_on_stderr(tmp_path, capsys):
    from asrprune.cli import main  # imported here: it loads every stage (torch, Lightning, ESPnet)

    lang_dir = tmp_path / "de"
    write_cv_split(lang_dir, "dev", [("a", "a.mp3", "Grüße")], encoding="latin-1")
    argv = ["prep-commonvoice", "--release", str(lang_dir), "--lang", "de", "--out", str(tmp_path / "out"),
            "--splits", "dev"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"asrprune prep-commonvoice: error: {lang_dir / 'dev.tsv'}:2: not UTF-8 (byte b'\\xfc' at column 11); "
        "convert the file to UTF-8"
    ]


def test_importing_the_model_prints_nothing_on_stdout():
    """ESPnet prints "Failed to import Flash Attention" on its first import; every command imports the model."""
    command = [sys.executable, "-c", "import asrprune.model.conformer_ctc"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
