"""The pipeline every corpus importer shares: candidate utterances in, one Kaldi data directory out.

An importer parses its corpus format into :class:`Candidate` objects (utterance id, audio, raw transcript,
speaker) and hands them to :func:`prepare_split`, which for ``out_root/<split>_<lang>/``

1. normalises the transcript and drops it if it holds a number with no single reading (``unreadable number``,
   see :mod:`asrprune.phonology.normalise`), if it is empty (``empty text``) or if it holds characters the
   language's G2P cannot read (``untranscribable characters``);
2. decodes the audio to 16 kHz mono and dumps it to ``wav/<uttid>.wav`` (an existing dump is reused, so a second
   or interrupted run decodes only what is missing); a missing or undecodable source is dropped
   (``missing audio`` / ``unreadable audio``);
3. drops train and dev utterances outside ``[min_duration, max_duration]`` seconds (``too short`` /
   ``too long``; ESPnet's defaults 0.1-20 s); test sets are never filtered, so scores stay comparable;
4. transcribes all words of the kept utterances with one :meth:`Lexicon.add_words` call into the language's
   shared lexicon ``out_root/lang_<lang>/lexicon.txt`` and drops utterances with a word G2P failed on
   (``no pronunciation``);
5. writes the data directory (``write_data_dir``) with absolute wav paths, plus ``prep_summary.json`` and
   ``dropped.tsv`` (:class:`PrepReport`), and prints the report line.
"""
from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path
from typing import Iterable, NamedTuple

import soundfile
from tqdm import tqdm

from asrprune.cli_options import add_out
from asrprune.data.audio import AudioReadError, load_audio, load_audio_bytes, write_wav
from asrprune.data.kaldi_dir import Utterance, write_data_dir
from asrprune.data.prep_report import PrepReport
from asrprune.phonology.lexicon import Lexicon
from asrprune.phonology.normalise import UnreadableNumber, normalise_text, untranscribable_characters

DEFAULT_MIN_DURATION = 0.1  # seconds; ESPnet asr.sh min_wav_duration
DEFAULT_MAX_DURATION = 20.0  # seconds; ESPnet asr.sh max_wav_duration
DURATION_FILTERED_SPLITS = ("train", "dev")
SPLITS = ("train", "dev", "test")

_UNSAFE_ID_CHARACTERS = re.compile(r"[\s/\\]+")


class CorpusFormatError(ValueError):
    """A corpus file does not have the expected layout; the message names the file, line or column."""


@dataclasses.dataclass(frozen=True)
class EncodedAudio:
    """An audio file held in memory (e.g. a Hugging Face dataset's ``bytes``); ``name`` says where it came from."""

    data: bytes
    name: str


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One utterance as the corpus gives it: ``text`` is the raw transcript, ``audio`` a file or in-memory bytes
    in any format and sample rate soundfile reads."""

    uttid: str
    audio: Path | EncodedAudio
    text: str
    speaker: str


def kaldi_id(*parts: str) -> str:
    """Join ``parts`` with ``-`` into an id usable as a Kaldi key and a file name (whitespace and slashes -> ``_``)."""
    return "-".join(_UNSAFE_ID_CHARACTERS.sub("_", part.strip()) for part in parts)


def data_dir_path(out_root: str | Path, split: str, lang: str) -> Path:
    """``out_root/<split>_<lang>``: where the data directory of one split of one language goes."""
    return Path(out_root) / f"{split}_{lang}"


def lexicon_path(out_root: str | Path, lang: str) -> Path:
    """``out_root/lang_<lang>/lexicon.txt``: the lexicon all splits of ``lang`` share."""
    return Path(out_root) / f"lang_{lang}" / "lexicon.txt"


def dump_audio(source: Path | EncodedAudio, wav_path: Path) -> float:
    """Write ``source`` as 16 kHz mono wav to ``wav_path`` unless that file exists; return its duration in seconds.

    Raises :class:`AudioReadError` if ``source`` is missing or undecodable.
    """
    if not wav_path.is_file():
        samples = load_audio_bytes(source.data, source.name) if isinstance(source, EncodedAudio) else load_audio(source)
        write_wav(wav_path, samples)
    info = soundfile.info(str(wav_path))
    return info.frames / info.samplerate


OUTPUT_HELP = (
    "Writes OUT/<split>_<lang>/ (wav.scp, text, utt2spk, spk2utt, utt2lang, utt2dur, phones, wav/*.wav at 16 kHz "
    "mono, prep_summary.json, dropped.tsv) and OUT/lang_<lang>/lexicon.txt, prints kept/dropped counts per split; "
    "re-running reuses the dumped wavs and the lexicon."
)


def add_output_arguments(parser: argparse.ArgumentParser, with_splits: bool) -> None:
    """Add the options every importer sub-command shares: ``--out``, ``--min/max-duration`` and, with
    ``with_splits``, ``--splits``."""
    add_out(parser, "output root for the data directories", type=Path)
    if with_splits:
        parser.add_argument(
            "--splits", nargs="+", default=list(SPLITS), choices=SPLITS, help="splits to import (default: all)"
        )
    for bound, default in (("min", DEFAULT_MIN_DURATION), ("max", DEFAULT_MAX_DURATION)):
        parser.add_argument(
            f"--{bound}-duration",
            type=float,
            default=default,
            help=f"{bound}imum utterance duration in seconds, train and dev only (default: {default})",
        )


class _Audible(NamedTuple):
    """An utterance that passed the text and audio checks: its normalised ``text``, dumped ``wav`` (absolute)
    and ``duration`` in seconds."""

    candidate: Candidate
    text: str
    wav: Path
    duration: float


def prepare_split(
    candidates: Iterable[Candidate],
    *,
    split: str,
    lang: str,
    out_root: str | Path,
    report: PrepReport | None = None,
    total: int | None = None,
    min_duration: float = DEFAULT_MIN_DURATION,
    max_duration: float = DEFAULT_MAX_DURATION,
) -> PrepReport:
    """Turn ``candidates`` into the data directory ``out_root/<split>_<lang>`` (steps in the module docstring).

    ``report`` may already hold drops the importer made while parsing (malformed rows, missing transcripts);
    ``total`` is the number of candidates, for the progress bar. Durations are in seconds. Returns the report.
    """
    data_dir = data_dir_path(out_root, split, lang)
    if any(ch.isspace() for ch in str(data_dir.resolve())):
        raise ValueError(f"{data_dir.resolve()}: wav.scp cannot hold paths with whitespace; choose another out_root")
    report = report if report is not None else PrepReport(data_dir.name)
    duration_range = (min_duration, max_duration) if split in DURATION_FILTERED_SPLITS else None
    audible = _screen_and_dump(candidates, data_dir, lang, duration_range, report, total)
    utterances = _pronounce(audible, lexicon_path(out_root, lang), lang, report)
    write_data_dir(data_dir, utterances)
    report.save(data_dir)
    print(report.format())
    return report


def _screen_and_dump(
    candidates: Iterable[Candidate],
    data_dir: Path,
    lang: str,
    duration_range: tuple[float, float] | None,
    report: PrepReport,
    total: int | None,
) -> list[_Audible]:
    """Steps 1-3: normalise and check the text, dump the audio to ``data_dir/wav/``, apply ``duration_range``
    (seconds; ``None``: keep any duration). Every candidate not returned is dropped into ``report``."""
    audible = []
    seen_ids: set[str] = set()
    for candidate in tqdm(candidates, total=total, desc=data_dir.name, unit="utt"):
        if candidate.uttid in seen_ids:
            report.drop(candidate.uttid, "duplicate utterance id", _source_name(candidate.audio))
            continue
        seen_ids.add(candidate.uttid)
        try:
            text = normalise_text(candidate.text, lang)
        except UnreadableNumber as err:
            report.drop(candidate.uttid, "unreadable number", f"{err} (raw text {candidate.text!r})")
            continue
        if not text:
            report.drop(candidate.uttid, "empty text", f"raw text {candidate.text!r}")
            continue
        untranscribable = untranscribable_characters(text, lang)
        if untranscribable:
            report.drop(candidate.uttid, "untranscribable characters", f"{' '.join(untranscribable)} in {text!r}")
            continue
        if isinstance(candidate.audio, Path) and not candidate.audio.is_file():
            report.drop(candidate.uttid, "missing audio", f"{candidate.audio}: no such file")
            continue
        wav_path = (data_dir / "wav" / f"{candidate.uttid}.wav").resolve()
        try:
            duration = dump_audio(candidate.audio, wav_path)
        except AudioReadError as err:
            report.drop(candidate.uttid, "unreadable audio", str(err))
            continue
        if duration_range is not None and duration < duration_range[0]:
            report.drop(candidate.uttid, "too short", f"{duration:.3f} s < {duration_range[0]} s")
        elif duration_range is not None and duration > duration_range[1]:
            report.drop(candidate.uttid, "too long", f"{duration:.3f} s > {duration_range[1]} s")
        else:
            audible.append(_Audible(candidate, text, wav_path, duration))
    return audible


def _pronounce(audible: list[_Audible], lexicon_file: Path, lang: str, report: PrepReport) -> list[Utterance]:
    """Step 4: add all words to the shared lexicon in one G2P call, then build the utterances whose words all
    have a pronunciation; the others are dropped into ``report``."""
    lexicon = Lexicon.load_or_empty(lexicon_file)
    g2p_failures = lexicon.add_words(sorted({word for utt in audible for word in utt.text.split()}), lang)
    lexicon.save(lexicon_file)
    utterances = []
    for utt in audible:
        words = utt.text.split()
        failed = [f"{word}: {g2p_failures[word]}" for word in words if word in g2p_failures]
        if failed:
            report.drop(utt.candidate.uttid, "no pronunciation", "; ".join(failed))
            continue
        utterances.append(
            Utterance(
                uttid=utt.candidate.uttid,
                wav=str(utt.wav),
                text=utt.text,
                speaker=utt.candidate.speaker,
                lang=lang,
                duration=utt.duration,
                phones=lexicon.transcribe(words),
            )
        )
        report.keep(utt.duration)
    return utterances


def _source_name(audio: Path | EncodedAudio) -> str:
    return audio.name if isinstance(audio, EncodedAudio) else str(audio)
