"""Tiny corpora in the real on-disk layouts of Common Voice, AISHELL-1 and Hugging Face datasets, for tests.

The transcripts are real words (so G2P works); the audio is a deterministic synthetic vowel-like signal
(harmonics of a random pitch plus noise), because the importers never look at what is said. Each builder
writes under a folder the caller gives (a ``tmp_path``) and returns the path to pass to the importer; the
module constants say what every row holds and so what an importer must keep or drop.
"""
from __future__ import annotations

import dataclasses
import io
import tarfile
from pathlib import Path

import numpy as np
import soundfile


def synthetic_audio(seconds: float, sample_rate: int, seed: int, channels: int = 1) -> np.ndarray:
    """Float32 samples of shape (samples, channels) in [-0.5, 0.5]: five harmonics of a seeded pitch plus noise."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(round(seconds * sample_rate))) / sample_rate
    pitch = rng.uniform(100.0, 220.0)
    voiced = sum(np.sin(2 * np.pi * pitch * k * time) / k for k in range(1, 6))
    mono = 0.2 * voiced + 0.02 * rng.standard_normal(time.shape)
    return np.repeat((mono / np.abs(mono).max() * 0.5)[:, None], channels, axis=1).astype(np.float32)


def encode_audio(seconds: float, sample_rate: int, seed: int, audio_format: str, channels: int = 1) -> bytes:
    """The bytes of a ``audio_format`` (``WAV``, ``FLAC``, ``MP3``) file holding :func:`synthetic_audio`."""
    buffer = io.BytesIO()
    soundfile.write(buffer, synthetic_audio(seconds, sample_rate, seed, channels), sample_rate, format=audio_format)
    return buffer.getvalue()


# --- Common Voice -------------------------------------------------------------------------------------------

CV_LANG = "de"
CV_RELEASE_NAME = "cv-corpus-17.0-2024-03-15"
CV_SAMPLE_RATE = 48000
CV_V17_COLUMNS = (
    "client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes", "age", "gender",
    "accents", "variant", "locale", "segment",
)
CV_OLD_COLUMNS = ("path", "sentence", "client_id", "up_votes", "down_votes", "age", "gender", "accent")


@dataclasses.dataclass(frozen=True)
class CvRow:
    """One TSV row: ``audio`` is ``"ok"`` (an mp3 of ``seconds``), ``"corrupt"`` (random bytes), ``"empty"`` (a
    zero-byte file) or ``"missing"`` (no file); ``outcome`` is what the importer must do with it: ``"kept"`` or the drop reason."""

    client_id: str
    clip: str
    sentence: str
    outcome: str
    audio: str = "ok"
    seconds: float = 1.0


CV_ROWS = {
    "train": (
        CvRow("a1f0", "common_voice_de_1.mp3", "Guten Morgen, wie geht's?", "kept", seconds=1.2),
        CvRow("a1f0", "common_voice_de_2.mp3", 'Das ist ein "Test.', "kept"),
        CvRow("b2e1", "common_voice_de_3.mp3", "Hallo Welt", "unreadable audio", audio="corrupt"),
        CvRow("b2e1", "common_voice_de_4.mp3", "", "empty text"),
        CvRow("c3d2", "common_voice_de_5.mp3", "Schönes Wetter heute", "missing audio", audio="missing"),
        CvRow("c3d2", "common_voice_de_6.mp3", "Ja", "too short", seconds=0.05),
        CvRow("c3d2", "common_voice_de_7.mp3", "Eine sehr lange Aufnahme", "too long", seconds=20.5),
        CvRow("a1f0", "common_voice_de_8.mp3", "Das kostet fünf €", "untranscribable characters"),
        CvRow("a1f0", "common_voice_de_30.mp3", "Es kostet 1.234,5 Euro.", "kept"),
        CvRow("b2e1", "common_voice_de_31.mp3", "Am 3. Mai", "unreadable number"),
        CvRow("b2e1", "common_voice_de_32.mp3", "Guten Abend", "unreadable audio", audio="empty"),
    ),
    "dev": (
        CvRow("d4c3", "common_voice_de_10.mp3", "Wir fahren morgen nach Berlin.", "kept"),
        CvRow("e5b4", "common_voice_de_11.mp3", "Die Katze schläft auf dem Sofa.", "kept", seconds=1.5),
    ),
    "test": (
        CvRow("f6a5", "common_voice_de_20.mp3", "Nein", "kept", seconds=0.05),  # test sets are not filtered
        CvRow("f6a5", "common_voice_de_21.mp3", "Das Wasser ist kalt.", "kept"),
    ),
}
CV_MALFORMED_SPLIT = "train"
CV_MALFORMED_LINE = 4  # a row whose sentence holds a tab, written after the second data row (header = line 1)
CV_NORMALISED_TEXT = {
    "common_voice_de_1": "guten morgen wie gehts",
    "common_voice_de_2": "das ist ein test",
    "common_voice_de_30": "es kostet eintausendzweihundertvierunddreißig komma fünf euro",
}


def write_commonvoice_release(
    root: Path, columns: tuple[str, ...] = CV_V17_COLUMNS, missing_column: tuple[str, str] | None = None
) -> Path:
    """Write ``root/<CV_RELEASE_NAME>/de/{train,dev,test}.tsv`` and ``clips/*.mp3`` (48 kHz) for :data:`CV_ROWS`
    with header ``columns``; ``missing_column=(split, column)`` leaves that column out of that split's TSV.
    Returns the ``cv-corpus-*`` folder."""
    release = root / CV_RELEASE_NAME
    clips = release / CV_LANG / "clips"
    clips.mkdir(parents=True)
    seed = 0
    for split, rows in CV_ROWS.items():
        header = [c for c in columns if (split, c) != missing_column]
        lines = ["\t".join(header)]
        for row in rows:
            seed += 1
            lines.append("\t".join(_cv_field(row, column, seed) for column in header))
            if split == CV_MALFORMED_SPLIT and len(lines) == CV_MALFORMED_LINE - 1:
                broken = dataclasses.replace(row, clip="common_voice_de_99.mp3", sentence="Hallo\tdu")
                lines.append("\t".join(_cv_field(broken, column, seed) for column in header))
            if row.audio == "ok":
                (clips / row.clip).write_bytes(encode_audio(row.seconds, CV_SAMPLE_RATE, seed, "MP3"))
            elif row.audio == "corrupt":
                (clips / row.clip).write_bytes(np.random.default_rng(seed).bytes(2000))
            elif row.audio == "empty":
                (clips / row.clip).write_bytes(b"")
        (release / CV_LANG / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return release


def write_cv_split(
    lang_dir: Path,
    split: str,
    rows: list[tuple[str, ...]],
    columns: tuple[str, ...] = ("client_id", "path", "sentence"),
    encoding: str = "utf-8",
) -> Path:
    """Write ``lang_dir/<split>.tsv`` with header ``columns`` and ``rows`` (one value per column) in ``encoding``
    (``"utf-8-sig"`` puts a byte-order mark first) and a 1 s 48 kHz mp3 in ``lang_dir/clips/`` for each clip of
    the ``path`` column (which ``columns`` must hold) that is not there yet. Returns the TSV."""
    (lang_dir / "clips").mkdir(parents=True, exist_ok=True)
    for seed, row in enumerate(rows):
        clip = lang_dir / "clips" / row[columns.index("path")]
        if not clip.exists():
            clip.write_bytes(encode_audio(1.0, CV_SAMPLE_RATE, seed, "MP3"))
    tsv = lang_dir / f"{split}.tsv"
    tsv.write_text("".join("\t".join(fields) + "\n" for fields in (columns, *rows)), encoding=encoding)
    return tsv


def _cv_field(row: CvRow, column: str, seed: int) -> str:
    values = {
        "client_id": row.client_id,
        "path": row.clip,
        "sentence": row.sentence,
        "sentence_id": f"{seed:064x}",
        "up_votes": "2",
        "down_votes": "0",
        "age": "twenties",
        "gender": "male_masculine",
        "locale": CV_LANG,
    }
    return values.get(column, "")


# --- AISHELL-1 ----------------------------------------------------------------------------------------------

AISHELL_SAMPLE_RATE = 16000
AISHELL_TRANSCRIPT = {  # the first lines of aishell_transcript_v0.8.txt for these speakers (word-segmented)
    "BAC009S0002W0122": "而 对 楼市 成交 抑制 作用 最 大 的 限 购",
    "BAC009S0002W0123": "也 成为 地方 政府 的 眼中 钉",
    "BAC009S0002W0124": "自 六月 底 呼和浩特 市 率先 宣布 取消 限 购 后",  # its wav is absent
    "BAC009S0724W0121": "甚至 出现 交易 几乎 停滞 的 情况",
    "BAC009S0764W0121": "一二 线 城市 虽然 也 处于 调整 中",
}
AISHELL_WAVS = {  # split -> speaker -> utterance ids with a wav
    "train": {"S0002": ("BAC009S0002W0122", "BAC009S0002W0123", "BAC009S0002W0125")},  # W0125: no transcript
    "dev": {"S0724": ("BAC009S0724W0121",)},
    "test": {"S0764": ("BAC009S0764W0121",)},
}


def write_aishell(root: Path, archived: bool) -> Path:
    """Write ``root/data_aishell/`` with the transcript and :data:`AISHELL_WAVS` as 16 kHz wavs, either extracted
    (``wav/<split>/<spk>/<id>.wav``) or, with ``archived``, as the release's ``wav/<spk>.tar.gz``. Returns root."""
    transcript = root / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt"
    transcript.parent.mkdir(parents=True)
    transcript.write_text("".join(f"{u} {t}\n" for u, t in AISHELL_TRANSCRIPT.items()), encoding="utf-8")
    wav_root = root / "data_aishell" / "wav"
    wav_root.mkdir()
    for split, speakers in AISHELL_WAVS.items():
        for speaker, uttids in speakers.items():
            archive = tarfile.open(wav_root / f"{speaker}.tar.gz", "w:gz") if archived else None
            for seed, uttid in enumerate(uttids):
                data = encode_audio(1.0, AISHELL_SAMPLE_RATE, seed, "WAV")
                member = f"{split}/{speaker}/{uttid}.wav"
                if archive is None:
                    (wav_root / member).parent.mkdir(parents=True, exist_ok=True)
                    (wav_root / member).write_bytes(data)
                else:
                    info = tarfile.TarInfo(member)
                    info.size = len(data)
                    archive.addfile(info, io.BytesIO(data))
            if archive is not None:
                archive.close()
    return root


# --- Hugging Face datasets ----------------------------------------------------------------------------------

HF_LANG = "de"


@dataclasses.dataclass(frozen=True)
class HfRow:
    """One dataset row; ``audio`` is ``(format, sample rate, channels)`` of the embedded file or ``"corrupt"``."""

    id: str
    client_id: str
    sentence: str
    outcome: str
    audio: tuple[str, int, int] | str = ("WAV", 16000, 1)


HF_ROWS = {
    "train": (
        HfRow("u0", "spk1", "Guten Tag", "kept"),
        HfRow("u1", "spk1", "Wie geht es dir?", "kept", ("MP3", 48000, 2)),
        HfRow("u2", "spk2", "", "empty text"),
        HfRow("u3", "spk2", "Hallo Welt", "unreadable audio", "corrupt"),
        HfRow("u4", "spk2", "Bis morgen", "kept", ("FLAC", 44100, 1)),
    ),
    "validation": (HfRow("v0", "spk3", "Ich bin müde.", "kept"),),
    "test": (HfRow("t0", "spk4", "Das Buch ist rot.", "kept"),),
    "other": (HfRow("o0", "spk5", "Nur ein Satz", "skipped"),),  # not in the default split map
}


def hf_dataset_dict():
    """:data:`HF_ROWS` as a ``datasets.DatasetDict`` with columns ``id, client_id, sentence, audio`` (Audio)."""
    import datasets  # imported here: it takes a second and only the HF tests need it

    splits = {}
    seed = 100
    for split, rows in HF_ROWS.items():
        audio = []
        for row in rows:
            seed += 1
            if row.audio == "corrupt":
                audio.append({"bytes": np.random.default_rng(seed).bytes(3000), "path": f"{row.id}.wav"})
            else:
                audio_format, rate, channels = row.audio
                data = encode_audio(1.0, rate, seed, audio_format, channels)
                audio.append({"bytes": data, "path": f"{row.id}.{audio_format.lower()}"})
        columns = {
            "id": [r.id for r in rows],
            "client_id": [r.client_id for r in rows],
            "sentence": [r.sentence for r in rows],
            "audio": audio,
        }
        splits[split] = datasets.Dataset.from_dict(columns).cast_column("audio", datasets.Audio())
    return datasets.DatasetDict(splits)


def write_hf_saved(root: Path) -> Path:
    """Save :func:`hf_dataset_dict` with ``save_to_disk`` to ``root/saved``; return that folder."""
    hf_dataset_dict().save_to_disk(str(root / "saved"))
    return root / "saved"


def write_hf_parquet(root: Path) -> Path:
    """Write :func:`hf_dataset_dict` as the hub's parquet layout ``root/parquet/data/<split>-00000-of-00001.parquet``;
    return ``root/parquet``."""
    for split, dataset in hf_dataset_dict().items():
        (root / "parquet" / "data").mkdir(parents=True, exist_ok=True)
        dataset.to_parquet(str(root / "parquet" / "data" / f"{split}-00000-of-00001.parquet"))
    return root / "parquet"
