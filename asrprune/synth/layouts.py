"""The two corpus formats the synthetic corpus is written in, so that the real corpora's importers read it:

- :class:`CommonVoiceLayout` (de, fr, es, it, pl): a Common Voice v17 language folder
  ``<out_dir>/cv-corpus-synth-1.0/<lang>/`` with ``clips/common_voice_<lang>_<8 digits>.mp3`` (mono, 48 kHz),
  unquoted tab-separated ``train.tsv``, ``dev.tsv``, ``test.tsv``, ``validated.tsv`` (their union) with the
  header :data:`CV_HEADER`, and ``clip_durations.tsv`` (``clip``, ``duration[ms]``);
- :class:`AishellLayout` (zh): an AISHELL-1 folder ``<out_dir>/aishell-synth/data_aishell/`` with
  ``wav/<split>/<speaker>/BAC009<speaker>W<4 digits>.wav`` (16 kHz, 16-bit, mono) and
  ``transcript/aishell_transcript_v0.8.txt`` (``<uttid> <words separated by spaces>``, sorted).

The transfer test split is a second release of each format, ``<out_dir>/cv-corpus-synth-transfer-1.0/<lang>/``
and ``<out_dir>/aishell-synth-transfer/data_aishell/``, whose test split holds it (train and dev are empty), so
the importers read it as they read any release.

A layout names the clips, writes each clip and, once all are made, the index files. Every file is written
under a temporary name and renamed, so an interrupted run leaves no partial file under the final name.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile

from asrprune.data.audio import write_wav
from asrprune.phonology.languages import get_language
from asrprune.synth import sentences
from asrprune.synth.plan import PlannedUtterance, Speaker

CV_RELEASE = "cv-corpus-synth-1.0"
CV_TRANSFER_RELEASE = "cv-corpus-synth-transfer-1.0"
CV_HEADER = (
    "client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes",
    "age", "gender", "accents", "variant", "locale", "segment",
)
CV_SAMPLE_RATE = 48000
CV_AGES = ("teens", "twenties", "thirties", "fourties", "fifties", "sixties", "")  # "fourties" sic, as in CV
CV_GENDERS = {"male": "male_masculine", "female": "female_feminine"}
MP3_COMPRESSION_LEVEL = 0.8  # LAME VBR ~55 kb/s, low-pass ~15 kHz (0.9 would cut at 7.5 kHz, below 16 kHz Nyquist)
AISHELL_ROOT = Path("aishell-synth") / "data_aishell"
AISHELL_TRANSFER_ROOT = Path("aishell-synth-transfer") / "data_aishell"
AISHELL_TRANSCRIPT = Path("transcript") / "aishell_transcript_v0.8.txt"
AISHELL_SAMPLE_RATE = 16000


class CommonVoiceLayout:
    """A Common Voice v17 language folder: mp3 clips at 48 kHz and the split TSVs."""

    sample_rate = CV_SAMPLE_RATE
    format_name = "commonvoice-v17"

    def __init__(self, out_dir: Path, lang: str, transfer: bool = False):
        self.lang = lang
        self.root = out_dir / (CV_TRANSFER_RELEASE if transfer else CV_RELEASE) / lang

    def clip_names(self, speakers_per_utterance: dict[str, list[Speaker]], rng: np.random.Generator) -> dict:
        """``clips/common_voice_<lang>_<8 digits>.mp3`` per utterance: increasing numbers with random gaps (as
        clips accumulate in a real release), shuffled over the utterances."""
        total = sum(len(v) for v in speakers_per_utterance.values())
        numbers = rng.integers(10_000_000, 40_000_000) + np.cumsum(rng.integers(1, 200, size=total))
        numbers = rng.permutation(numbers)
        names, start = {}, 0
        for split, utterance_speakers in speakers_per_utterance.items():
            split_numbers = numbers[start:start + len(utterance_speakers)]
            names[split] = [f"clips/common_voice_{self.lang}_{n}.mp3" for n in split_numbers]
            start += len(utterance_speakers)
        return names

    def write_clip(self, path: Path, samples: np.ndarray) -> None:
        """Write mono float ``samples`` at 48 kHz as MP3, via a temporary file and rename."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        soundfile.write(str(tmp), samples, self.sample_rate, format="MP3", compression_level=MP3_COMPRESSION_LEVEL)
        tmp.replace(path)

    def write_index(self, plans: dict[str, list[PlannedUtterance]], durations: dict[str, list[float]]) -> None:
        """Write one TSV per split of ``plans`` (in its order), ``validated.tsv`` (their union) and
        ``clip_durations.tsv`` from ``durations`` (seconds, per split in plan order)."""
        rows = {split: [self._row(plan) for plan in split_plans] for split, split_plans in plans.items()}
        rows["validated"] = [row for split in plans for row in rows[split]]
        for name, split_rows in rows.items():
            write_text(self.root / f"{name}.tsv", "".join("\t".join(row) + "\n" for row in [CV_HEADER, *split_rows]))
        lines = [f"{Path(p.clip).name}\t{round(d * 1000)}\n" for s in plans for p, d in zip(plans[s], durations[s])]
        write_text(self.root / "clip_durations.tsv", "clip\tduration[ms]\n" + "".join(lines))

    def _row(self, plan: PlannedUtterance) -> tuple[str, ...]:
        sentence = sentences.written_sentence(plan.words, self.lang)
        speaker = plan.speaker
        fields = {
            "client_id": speaker.client_id,
            "path": Path(plan.clip).name,
            "sentence_id": hashlib.sha256(sentence.encode()).hexdigest(),
            "sentence": sentence,
            "sentence_domain": "",
            "up_votes": str(plan.up_votes),
            "down_votes": str(plan.down_votes),
            "age": speaker.age,
            "gender": CV_GENDERS[speaker.gender],
            "accents": "",
            "variant": "",
            "locale": self.lang,
            "segment": "",
        }
        return tuple(fields[column] for column in CV_HEADER)


class AishellLayout:
    """An AISHELL-1 ``data_aishell`` folder: 16 kHz wavs per split and speaker, one transcript file."""

    sample_rate = AISHELL_SAMPLE_RATE
    format_name = "aishell-1"

    def __init__(self, out_dir: Path, lang: str, transfer: bool = False):
        self.root = out_dir / (AISHELL_TRANSFER_ROOT if transfer else AISHELL_ROOT)

    def clip_names(self, speakers_per_utterance: dict[str, list[Speaker]], rng: np.random.Generator) -> dict:
        """``wav/<split>/<speaker>/BAC009<speaker>W<n>.wav``, ``n`` counting each speaker's utterances from 1."""
        names = {}
        for split, utterance_speakers in speakers_per_utterance.items():
            counts: dict[str, int] = {}
            names[split] = []
            for speaker in utterance_speakers:
                counts[speaker.speaker_id] = counts.get(speaker.speaker_id, 0) + 1
                uttid = f"BAC009{speaker.speaker_id}W{counts[speaker.speaker_id]:04d}"
                names[split].append(f"wav/{split}/{speaker.speaker_id}/{uttid}.wav")
        return names

    def write_clip(self, path: Path, samples: np.ndarray) -> None:
        """Write mono float ``samples`` at 16 kHz as 16-bit wav (atomically, by :func:`write_wav`)."""
        write_wav(path, samples, self.sample_rate)

    def write_index(self, plans: dict[str, list[PlannedUtterance]], durations: dict[str, list[float]]) -> None:
        """Write the transcript of every split's ``plans``, sorted by utterance id (``durations`` are unused:
        AISHELL-1 lists none)."""
        lines = sorted(
            f"{Path(p.clip).stem} {' '.join(p.words)}\n" for split_plans in plans.values() for p in split_plans
        )
        write_text(self.root / AISHELL_TRANSCRIPT, "".join(lines))


CorpusLayout = CommonVoiceLayout | AishellLayout


def layout_for(out_dir: Path, lang: str, transfer: bool = False) -> CorpusLayout:
    """The format ``lang`` is written in under ``out_dir``: AISHELL-1 for Hanzi languages, else Common Voice;
    ``transfer``: the transfer test split's release."""
    return (AishellLayout if get_language(lang).script == "hanzi" else CommonVoiceLayout)(out_dir, lang, transfer)


def write_text(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` (UTF-8) via a temporary file and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content, encoding="utf-8")
    tmp.replace(path)
