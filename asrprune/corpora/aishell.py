"""Import AISHELL-1 (openslr 33) into Kaldi data directories (language ``zh``).

Input: ``root/data_aishell/`` with ``transcript/aishell_transcript_v0.8.txt`` (``<uttid> <word-segmented
Chinese>``) and the audio either extracted, ``wav/{train,dev,test}/<speaker>/<uttid>.wav``, or as released,
``wav/<speaker>.tar.gz`` archives each holding ``{train,dev,test}/<speaker>/*.wav``. Archives are extracted in
place once (a ``.<archive>.extracted`` marker beside each records completion; ``filter="data"`` refuses
paths that leave ``wav/``).

As in ESPnet's recipe, an utterance is kept only if the transcript has it: a wav without a transcript line is
dropped as ``no transcript``; a transcript line whose speaker's split folder has no wav for it is dropped as
``missing audio`` in that split. A transcript line whose speaker has no folder in any split belongs to no split;
it is dropped as ``no speaker folder`` in the report of the first split imported (``train`` by default).
Utterance id = wav basename (it already starts with ``BAC009`` + speaker, so ids sort by speaker), speaker =
parent folder. The text keeps the transcript's word segmentation; CER scoring removes the spaces. Output and
filtering: see :mod:`asrprune.corpora.common`.
"""
from __future__ import annotations

import argparse
import re
import tarfile
from pathlib import Path

from tqdm import tqdm

from asrprune.data.prep_report import PrepReport
from asrprune.text_files import read_utf8_lines
from asrprune.corpora.common import (
    DEFAULT_MAX_DURATION,
    DEFAULT_MIN_DURATION,
    OUTPUT_HELP,
    SPLITS,
    Candidate,
    CorpusFormatError,
    add_output_arguments,
    data_dir_path,
    prepare_split,
)

LANG = "zh"
TRANSCRIPT = Path("data_aishell/transcript/aishell_transcript_v0.8.txt")
WAV_ROOT = Path("data_aishell/wav")
_SPEAKER_IN_UTTID = re.compile(r"S\d{4}")  # AISHELL ids are BAC009 + speaker (S0002) + W + number


def import_aishell(
    root: str | Path,
    out_root: str | Path,
    splits: tuple[str, ...] = SPLITS,
    min_duration: float = DEFAULT_MIN_DURATION,
    max_duration: float = DEFAULT_MAX_DURATION,
) -> dict[str, PrepReport]:
    """Import ``splits`` of the AISHELL-1 copy under ``root`` into ``out_root/<split>_zh/``; durations in seconds."""
    root = Path(root)
    transcript = read_transcript(root / TRANSCRIPT)
    wav_root = root / WAV_ROOT
    if not wav_root.is_dir():
        raise CorpusFormatError(f"{wav_root}: no such folder (expected the AISHELL-1 wavs or wav/*.tar.gz)")
    extract_archives(wav_root)
    speaker_split = {
        speaker_dir.name: split
        for split in SPLITS
        for speaker_dir in sorted((wav_root / split).glob("*"))
        if speaker_dir.is_dir()
    }
    unplaced = sorted(uttid for uttid in transcript if _speaker_of(uttid) not in speaker_split)
    reports = {}
    for split in splits:
        report = PrepReport(data_dir_path(out_root, split, LANG).name)
        if split == splits[0]:
            for uttid in unplaced:
                speaker = _speaker_of(uttid) or "(no S<4 digits> speaker in the id)"
                report.drop(uttid, "no speaker folder", f"no {wav_root}/{{{','.join(SPLITS)}}}/{speaker}")
        wavs = {wav.stem: wav for wav in sorted((wav_root / split).glob("*/*.wav"))}
        for uttid, wav in wavs.items():
            if uttid not in transcript:
                report.drop(uttid, "no transcript", str(wav))
        for uttid in sorted(transcript):
            if speaker_split.get(_speaker_of(uttid)) == split and uttid not in wavs:
                report.drop(uttid, "missing audio", f"no {uttid}.wav under {wav_root / split}")
        candidates = [
            Candidate(uttid=uttid, audio=wav, text=transcript[uttid], speaker=wav.parent.name)
            for uttid, wav in wavs.items()
            if uttid in transcript
        ]
        reports[split] = prepare_split(
            candidates,
            split=split,
            lang=LANG,
            out_root=out_root,
            report=report,
            total=len(candidates),
            min_duration=min_duration,
            max_duration=max_duration,
        )
    return reports


def read_transcript(path: Path) -> dict[str, str]:
    """``{uttid: text}`` from ``<uttid> <text>`` lines; raise :class:`CorpusFormatError` naming the file and line
    of a repeated id or of a line that is not UTF-8."""
    if not path.is_file():
        raise CorpusFormatError(f"{path}: no such file (expected the AISHELL-1 transcript)")
    transcript: dict[str, str] = {}
    for lineno, line in enumerate(read_utf8_lines(path, CorpusFormatError), 1):
        uttid, _, text = line.strip().partition(" ")
        if not uttid:
            continue
        if uttid in transcript:
            raise CorpusFormatError(f"{path}:{lineno}: utterance {uttid!r} repeated")
        transcript[uttid] = text.strip()
    return transcript


def extract_archives(wav_root: Path) -> None:
    """Extract every ``wav_root/*.tar.gz`` into ``wav_root`` unless its ``.<name>.extracted`` marker exists."""
    archives = sorted(wav_root.glob("*.tar.gz"))
    pending = [a for a in archives if not _extraction_marker(a).exists()]
    for archive in tqdm(pending, desc="extracting AISHELL archives", unit="archive", disable=not pending):
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(wav_root, filter="data")
        except (tarfile.TarError, OSError) as err:
            raise CorpusFormatError(f"{archive}: cannot extract ({err})") from None
        _extraction_marker(archive).touch()


def _extraction_marker(archive: Path) -> Path:
    return archive.with_name(f".{archive.name}.extracted")


def _speaker_of(uttid: str) -> str | None:
    match = _SPEAKER_IN_UTTID.search(uttid)
    return match.group() if match else None


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prep-aishell`` sub-command."""
    parser = subparsers.add_parser(
        "prep-aishell",
        description=(
            "Import AISHELL-1 from ROOT/data_aishell/ (transcript/aishell_transcript_v0.8.txt and wav/, either "
            f"extracted or as the release's wav/<speaker>.tar.gz, which are extracted once). {OUTPUT_HELP}"
        ),
        epilog="example: asrprune prep-aishell --root corpora/aishell --out data",
    )
    parser.add_argument("--root", required=True, type=Path, help="folder holding data_aishell/")
    add_output_arguments(parser, with_splits=True)
    parser.set_defaults(
        func=lambda args: import_aishell(args.root, args.out, tuple(args.splits), args.min_duration, args.max_duration)
    )
