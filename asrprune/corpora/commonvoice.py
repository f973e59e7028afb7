"""Import a Mozilla Common Voice release folder into Kaldi data directories.

Input: an extracted release, ``cv-corpus-<version>/<lang>/`` with ``train.tsv``, ``dev.tsv``, ``test.tsv`` and
``clips/*.mp3`` (48 or 32 kHz). Either the ``cv-corpus-*`` folder or the language folder may be given.

The official ``train/dev/test.tsv`` splits are used, not ESPnet's ``validated`` minus dev/test: the official
splits keep every sentence in only one split, while ``validated`` holds further recordings of the test
sentences, so a model trained on it has heard the test sentences (espnet PR #1000 / #1485).

TSVs are read by header name because the column set and order change between releases (``accent`` became
``accents``, ``sentence_id``/``sentence_domain``/``variant`` were added in v17), and with ``csv.QUOTE_NONE``
because sentences contain unmatched quotes. Only ``client_id``, ``path`` and ``sentence`` are used.
Utterance id = ``<client_id>-<clip name without extension>`` (speaker prefix, Kaldi's convention),
speaker = ``client_id``. Output and filtering: see :mod:`asrprune.corpora.common`.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Iterator

from asrprune.cli_options import add_lang
from asrprune.data.prep_report import PrepReport
from asrprune.text_files import read_utf8_lines
from asrprune.phonology.languages import LANGUAGES, get_language
from asrprune.corpora.common import (
    DEFAULT_MAX_DURATION,
    DEFAULT_MIN_DURATION,
    OUTPUT_HELP,
    SPLITS,
    Candidate,
    CorpusFormatError,
    add_output_arguments,
    data_dir_path,
    kaldi_id,
    prepare_split,
)

REQUIRED_COLUMNS = ("client_id", "path", "sentence")


def import_commonvoice(
    release_dir: str | Path,
    lang: str,
    out_root: str | Path,
    splits: tuple[str, ...] = SPLITS,
    min_duration: float = DEFAULT_MIN_DURATION,
    max_duration: float = DEFAULT_MAX_DURATION,
) -> dict[str, PrepReport]:
    """Import ``splits`` of language ``lang`` into ``out_root/<split>_<lang>/``; durations in seconds.

    Every split's TSV is read before anything is written: a missing file or required column, or a line that is
    not UTF-8, raises :class:`CorpusFormatError` naming the file (and line) and leaves ``out_root`` untouched.
    """
    get_language(lang)
    lang_dir = find_language_dir(release_dir, lang)
    tsv_files = {split: lang_dir / f"{split}.tsv" for split in splits}
    first_rows: dict[str, str] = {}  # shared by the splits, so a clip in two splits is flagged too
    split_rows = {}
    for split, tsv in tsv_files.items():
        report = PrepReport(data_dir_path(out_root, split, lang).name)
        split_rows[split] = (report, list(read_clips_tsv(tsv, lang_dir / "clips", report, first_rows)))
    return {
        split: prepare_split(
            rows,
            split=split,
            lang=lang,
            out_root=out_root,
            report=report,
            total=len(rows),
            min_duration=min_duration,
            max_duration=max_duration,
        )
        for split, (report, rows) in split_rows.items()
    }


def find_language_dir(release_dir: str | Path, lang: str) -> Path:
    """The folder holding the TSVs: ``release_dir/<lang>`` or ``release_dir`` itself."""
    release_dir = Path(release_dir)
    for candidate in (release_dir / lang, release_dir):
        if (candidate / "clips").is_dir() or any(candidate.glob("*.tsv")):
            return candidate
    raise CorpusFormatError(
        f"{release_dir}: no Common Voice language folder (expected {release_dir / lang}/ or {release_dir}/ "
        "holding train.tsv, dev.tsv, test.tsv and clips/)"
    )


def read_header(tsv: Path) -> list[str]:
    """The column names of ``tsv``; raise :class:`CorpusFormatError` if the file or a required column is missing."""
    if not tsv.is_file():
        raise CorpusFormatError(f"{tsv}: no such file")
    header = next(_tsv_lines(tsv), (1, []))[1]
    for column in REQUIRED_COLUMNS:
        if column not in header:
            raise CorpusFormatError(f"{tsv}: missing column {column!r} (header: {', '.join(header) or 'empty'})")
    return header


def read_clips_tsv(tsv: Path, clips_dir: Path, report: PrepReport, first_rows: dict[str, str]) -> Iterator[Candidate]:
    """Yield one :class:`Candidate` per data row of ``tsv``; blank lines are skipped. Dropped into ``report``:
    rows with the wrong number of fields (``malformed row``; detail: file, line number, field counts) and rows
    naming a clip that an earlier row named (``duplicate clip``; ``first_rows`` maps each clip to its first
    ``file:line``; it is updated, and shared by the splits), so one recording never becomes two utterances."""
    header = read_header(tsv)
    column = {name: header.index(name) for name in REQUIRED_COLUMNS}
    lines = _tsv_lines(tsv)
    next(lines)
    for lineno, fields in lines:
        if not fields:
            continue
        if len(fields) != len(header):
            detail = f"{tsv} line {lineno}: {len(fields)} fields, header has {len(header)}"
            report.drop(f"{tsv.name}:{lineno}", "malformed row", detail)
            continue
        client_id = kaldi_id(fields[column["client_id"]])
        clip = fields[column["path"]]
        uttid = kaldi_id(client_id, Path(clip).stem)
        if clip in first_rows:
            report.drop(uttid, "duplicate clip", f"{tsv}:{lineno}: {clip} already on {first_rows[clip]}")
            continue
        first_rows[clip] = f"{tsv.name}:{lineno}"
        yield Candidate(
            uttid=uttid,
            audio=clips_dir / clip,
            text=fields[column["sentence"]],
            speaker=client_id,
        )


def _tsv_lines(tsv: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each line of ``tsv``, tab-separated with quotes taken literally (QUOTE_NONE);
    a byte-order mark before the header is removed, and a line that is not UTF-8 raises
    :class:`CorpusFormatError` naming the file and line (:func:`~asrprune.data.text_files.read_utf8_lines`)."""
    reader = csv.reader(read_utf8_lines(tsv, CorpusFormatError), delimiter="\t", quoting=csv.QUOTE_NONE)
    for fields in reader:
        yield reader.line_num, fields


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prep-commonvoice`` sub-command."""
    parser = subparsers.add_parser(
        "prep-commonvoice",
        description=(
            "Import the official train/dev/test splits of one language of an extracted Common Voice release "
            f"(clips/*.mp3 and <split>.tsv, any release's column order). {OUTPUT_HELP}"
        ),
        epilog="example: asrprune prep-commonvoice --release corpora/cv-corpus-17.0-2024-03-15 --lang de --out data",
    )
    parser.add_argument("--release", required=True, type=Path, help="cv-corpus-* folder or its <lang>/ folder")
    add_lang(parser, choices=sorted(LANGUAGES))
    add_output_arguments(parser, with_splits=True)
    parser.set_defaults(
        func=lambda args: import_commonvoice(
            args.release, args.lang, args.out, tuple(args.splits), args.min_duration, args.max_duration
        )
    )
