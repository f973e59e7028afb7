"""Kaldi-style data directories: the one data contract between importers, training and scoring.

A data directory holds one line per utterance in each of these files, sorted by utterance id
(C collation, as Kaldi's ``utils/validate_data_dir.sh`` requires):

- ``wav.scp``   ``<uttid> <path to a 16 kHz mono wav file>``
- ``text``      ``<uttid> <normalised transcript>`` (words separated by spaces; Mandarin words as segmented)
- ``utt2spk``   ``<uttid> <speaker id>``; ``spk2utt`` is derived from it
- ``utt2lang``  ``<uttid> <language code>`` (``de``, ``fr``, ``es``, ``it``, ``pl``, ``zh``)
- ``utt2dur``   ``<uttid> <duration in seconds>``
- ``phones``    ``<uttid> <IPA phone tokens separated by spaces>`` (no word boundaries)

ESPnet tools read the first five files as they are; ``phones`` is asrprune's training target. Utterance ids
start with the speaker id, so sorting by utterance id also groups speakers (Kaldi's convention).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable

from asrprune.text_files import read_utf8_lines

REQUIRED_FILES = ("wav.scp", "text", "utt2spk", "utt2lang", "utt2dur", "phones")


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One utterance of a data directory.

    ``wav`` is a path to 16 kHz mono audio; ``duration`` is in seconds; ``phones`` is the IPA phone sequence.
    """

    uttid: str
    wav: str
    text: str
    speaker: str
    lang: str
    duration: float
    phones: tuple[str, ...]


class DataDirError(ValueError):
    """A data directory is missing a file or has a malformed line; the message names file and line."""


def write_data_dir(path: str | Path, utterances: Iterable[Utterance]) -> None:
    """Write ``utterances`` as a Kaldi-style data directory at ``path`` (created if needed, files replaced)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    utts = sorted(utterances, key=lambda u: u.uttid.encode())
    seen: set[str] = set()
    for u in utts:
        if u.uttid in seen:
            raise DataDirError(f"{path}: utterance id {u.uttid!r} occurs twice")
        if any(ch.isspace() for ch in u.uttid + u.speaker + u.wav):
            raise DataDirError(f"{path}: whitespace in id, speaker or path of {u.uttid!r}")
        seen.add(u.uttid)
    columns = {
        "wav.scp": lambda u: u.wav,
        "text": lambda u: u.text,
        "utt2spk": lambda u: u.speaker,
        "utt2lang": lambda u: u.lang,
        "utt2dur": lambda u: f"{u.duration:.3f}",
        "phones": lambda u: " ".join(u.phones),
    }
    for name, column in columns.items():
        _write_atomically(path / name, "".join(f"{u.uttid} {column(u)}\n" for u in utts))
    speakers: dict[str, list[str]] = {}
    for u in utts:
        speakers.setdefault(u.speaker, []).append(u.uttid)
    _write_atomically(
        path / "spk2utt",
        "".join(f"{spk} {' '.join(ids)}\n" for spk, ids in sorted(speakers.items(), key=lambda kv: kv[0].encode())),
    )


def read_data_dir(path: str | Path) -> list[Utterance]:
    """Read the data directory at ``path``; raise :class:`DataDirError` naming the file and line on bad input."""
    path = Path(path)
    if not path.is_dir():
        raise DataDirError(f"{path}: not a data directory")
    tables = {name: read_table(path / name) for name in REQUIRED_FILES}
    ids = list(tables["wav.scp"])
    for name, table in tables.items():
        if set(table) != set(ids):
            missing = sorted(set(ids) - set(table))[:3]
            extra = sorted(set(table) - set(ids))[:3]
            raise DataDirError(f"{path / name}: utterance ids differ from wav.scp (missing {missing}, extra {extra})")
    utts = []
    for uttid in ids:
        duration_field = tables["utt2dur"][uttid]
        try:
            duration = float(duration_field)
        except ValueError:
            raise DataDirError(f"{path / 'utt2dur'}: {uttid}: duration {duration_field!r} is not a number") from None
        utts.append(
            Utterance(
                uttid=uttid,
                wav=tables["wav.scp"][uttid],
                text=tables["text"][uttid],
                speaker=tables["utt2spk"][uttid],
                lang=tables["utt2lang"][uttid],
                duration=duration,
                phones=tuple(tables["phones"][uttid].split()),
            )
        )
    return utts


def read_table(file: str | Path) -> dict[str, str]:
    """Read ``<key> <value...>`` lines into a dict (value may be empty or contain spaces); raise
    :class:`DataDirError` naming the file and line of a repeated key or a line that is not UTF-8."""
    file = Path(file)
    if not file.is_file():
        raise DataDirError(f"{file}: missing")
    table: dict[str, str] = {}
    for lineno, line in enumerate(read_utf8_lines(file, DataDirError), 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        key, _, value = line.partition(" ")
        if key in table:
            raise DataDirError(f"{file}:{lineno}: key {key!r} repeated")
        table[key] = value.strip()
    return table


def _write_atomically(file: Path, content: str) -> None:
    """Write via a temporary file and rename, so an interrupted run never leaves a half-written table."""
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(content, encoding="utf-8")
    tmp.replace(file)
