"""Import a Hugging Face ``datasets`` corpus (hub name, ``save_to_disk`` folder or parquet) into Kaldi data dirs.

``datasets`` >= 4 decodes audio with torchcodec, which needs the FFmpeg libraries; this importer therefore reads
the audio column undecoded (``Audio(decode=False)``: ``{"bytes", "path"}``) and decodes it with soundfile
(:func:`asrprune.data.audio.load_audio_bytes`, or :func:`asrprune.data.audio.load_audio` for a bare path).

Source splits are renamed with ``split_map`` (default: ``train``, ``validation``/``dev`` -> ``dev``, ``test``);
splits it does not name are skipped and listed. Utterance id = ``id_column``'s value or ``<split>-<row:06d>``,
prefixed by ``<speaker>-`` when ``speaker_column`` is given (Kaldi's convention); without a speaker column each
utterance is its own speaker. Output and filtering: see :mod:`asrprune.corpora.common`.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterator

import datasets

from asrprune.cli_options import add_lang
from asrprune.data.prep_report import PrepReport
from asrprune.phonology.languages import LANGUAGES, get_language
from asrprune.corpora.common import (
    DEFAULT_MAX_DURATION,
    DEFAULT_MIN_DURATION,
    OUTPUT_HELP,
    Candidate,
    CorpusFormatError,
    EncodedAudio,
    add_output_arguments,
    data_dir_path,
    kaldi_id,
    prepare_split,
)

DEFAULT_SPLIT_MAP = {"train": "train", "validation": "dev", "dev": "dev", "test": "test"}


def import_hf_dataset(
    source: str | Path,
    lang: str,
    out_root: str | Path,
    split_map: dict[str, str] | None = None,
    text_column: str = "sentence",
    audio_column: str = "audio",
    speaker_column: str | None = None,
    id_column: str | None = None,
    cache_dir: str | Path | None = None,
    min_duration: float = DEFAULT_MIN_DURATION,
    max_duration: float = DEFAULT_MAX_DURATION,
) -> dict[str, PrepReport]:
    """Import the splits of ``source`` named in ``split_map`` into ``out_root/<split>_<lang>/``.

    ``cache_dir`` is where ``load_dataset`` keeps its Arrow cache (hub and parquet sources); durations in seconds.
    Returns the reports keyed by output split name. Columns and splits are checked before anything is written.
    """
    get_language(lang)
    split_map = DEFAULT_SPLIT_MAP if split_map is None else split_map
    splits = load_splits(source, cache_dir)
    selected = select_splits(splits, split_map, source)
    columns = list(dict.fromkeys(c for c in (audio_column, text_column, speaker_column, id_column) if c is not None))
    for name, dataset in selected.items():
        missing = [c for c in columns if c not in dataset.column_names]
        if missing:
            raise CorpusFormatError(
                f"{source} split {name!r}: no column {', '.join(map(repr, missing))} "
                f"(available: {', '.join(dataset.column_names)})"
            )
    reports = {}
    for name, dataset in selected.items():
        split = split_map[name]
        rows = dataset.select_columns(columns).cast_column(audio_column, datasets.Audio(decode=False))
        report = PrepReport(data_dir_path(out_root, split, lang).name)
        candidates = rows_to_candidates(rows, name, split, text_column, audio_column, speaker_column, id_column, report)
        reports[split] = prepare_split(
            candidates,
            split=split,
            lang=lang,
            out_root=out_root,
            report=report,
            total=len(rows),
            min_duration=min_duration,
            max_duration=max_duration,
        )
    return reports


def load_splits(source: str | Path, cache_dir: str | Path | None = None) -> dict[str, datasets.Dataset]:
    """Load ``source`` as ``{split name: Dataset}``.

    A folder with ``dataset_dict.json`` or ``state.json`` is a ``save_to_disk`` copy; a ``.parquet`` file or a
    folder holding parquet files is read with the parquet builder (split names from the file names, e.g.
    ``data/train-00000-of-00001.parquet``; a single file is ``train``); anything that is not a local path is a
    hub dataset name. A single saved ``Dataset`` is named by its ``split`` attribute, else ``train``.
    """
    path = Path(source)
    cache = str(cache_dir) if cache_dir is not None else None
    if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
        loaded = datasets.load_from_disk(str(path))
    elif path.is_file() and path.suffix == ".parquet":
        loaded = datasets.load_dataset("parquet", data_files=str(path), cache_dir=cache)
    elif path.is_dir() and any(path.rglob("*.parquet")):
        loaded = datasets.load_dataset("parquet", data_dir=str(path), cache_dir=cache)
    elif path.exists():
        raise CorpusFormatError(f"{path}: neither a save_to_disk folder nor a parquet file or folder of them")
    else:
        loaded = datasets.load_dataset(str(source), cache_dir=cache)
    if isinstance(loaded, datasets.Dataset):
        return {str(loaded.split) if loaded.split else "train": loaded}
    return dict(loaded)


def select_splits(
    splits: dict[str, datasets.Dataset], split_map: dict[str, str], source: str | Path
) -> dict[str, datasets.Dataset]:
    """The splits ``split_map`` names, in ``splits``' order; print those skipped, raise if none is left or two
    source splits would write the same output split."""
    selected = {name: dataset for name, dataset in splits.items() if name in split_map}
    skipped = [name for name in splits if name not in split_map]
    if skipped:
        print(f"{source}: skipping splits not in the split map: {', '.join(skipped)}")
    if not selected:
        raise CorpusFormatError(
            f"{source}: none of the splits {', '.join(splits)} is in the split map {split_map}"
        )
    targets = [split_map[name] for name in selected]
    if len(set(targets)) != len(targets):
        raise CorpusFormatError(
            f"{source}: splits {', '.join(selected)} map onto the same output split ({', '.join(targets)})"
        )
    return selected


def rows_to_candidates(
    rows: datasets.Dataset,
    source_split: str,
    split: str,
    text_column: str,
    audio_column: str,
    speaker_column: str | None,
    id_column: str | None,
    report: PrepReport,
) -> Iterator[Candidate]:
    """Yield a :class:`Candidate` per row of ``rows``, the source split ``source_split`` that becomes ``split``
    (its audio column cast to ``Audio(decode=False)``); a row with neither audio bytes nor a path is dropped
    into ``report`` as ``missing audio``."""
    for index, row in enumerate(rows):
        base_id = str(row[id_column]) if id_column is not None else f"{split}-{index:06d}"
        speaker = kaldi_id(str(row[speaker_column])) if speaker_column and row[speaker_column] is not None else ""
        uttid = kaldi_id(base_id) if not speaker or base_id.startswith(f"{speaker}-") else kaldi_id(speaker, base_id)
        audio = row[audio_column] or {}
        where = f"{source_split} row {index}"
        if audio.get("bytes"):
            source: Path | EncodedAudio = EncodedAudio(audio["bytes"], f"{where} ({audio.get('path') or 'bytes'})")
        elif audio.get("path"):
            source = Path(audio["path"])
        else:
            report.drop(uttid, "missing audio", f"{where}: column {audio_column!r} is empty")
            continue
        text = "" if row[text_column] is None else str(row[text_column])
        yield Candidate(uttid=uttid, audio=source, text=text, speaker=speaker or uttid)


def _split_pair(pair: str) -> tuple[str, str]:
    """Parse one ``SOURCE=TARGET`` command-line item of ``--split-map``."""
    source, sep, target = pair.partition("=")
    if not sep or not source or not target:
        raise argparse.ArgumentTypeError(f"{pair!r} is not SOURCE=TARGET")
    return source, target


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prep-hf`` sub-command."""
    parser = subparsers.add_parser(
        "prep-hf",
        description=(
            "Import a Hugging Face dataset with a text and an audio column. SOURCE is a save_to_disk folder, a "
            "parquet file or folder of parquet files, or a hub name (needs network access); audio is decoded "
            f"with soundfile, no FFmpeg needed. {OUTPUT_HELP}"
        ),
        epilog=(
            "example: asrprune prep-hf --source corpora/my_cv_de --lang de --out data "
            "--split-map train=train validation=dev test=test --speaker-column client_id"
        ),
    )
    parser.add_argument("--source", required=True, help="save_to_disk folder, parquet file/folder or hub name")
    add_lang(parser, choices=sorted(LANGUAGES))
    parser.add_argument(
        "--split-map",
        nargs="+",
        metavar="SOURCE=TARGET",
        type=_split_pair,
        help="source split -> train/dev/test (default: train=train validation=dev dev=dev test=test)",
    )
    parser.add_argument("--text-column", default="sentence", help="column with the transcript (default: sentence)")
    parser.add_argument("--audio-column", default="audio", help="column with the audio (default: audio)")
    parser.add_argument("--speaker-column", help="column with the speaker id (default: none)")
    parser.add_argument("--id-column", help="column with the utterance id (default: <split>-<row>)")
    parser.add_argument("--cache-dir", type=Path, help="datasets cache folder (default: the datasets default)")
    add_output_arguments(parser, with_splits=False)
    parser.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> dict[str, PrepReport]:
    return import_hf_dataset(
        args.source,
        args.lang,
        args.out,
        split_map=dict(args.split_map) if args.split_map else None,
        text_column=args.text_column,
        audio_column=args.audio_column,
        speaker_column=args.speaker_column,
        id_column=args.id_column,
        cache_dir=args.cache_dir,
        min_duration=args.min_duration,
        max_duration=args.max_duration,
    )
