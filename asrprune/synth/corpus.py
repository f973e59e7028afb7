"""A synthetic multilingual speech corpus, spoken by espeak-ng and written in the real corpora's formats.

The importers read it exactly as they read the real corpora:

- de, fr, es, it, pl: a Common Voice release ``out_dir/cv-corpus-synth-1.0/<lang>/`` with
  ``clips/common_voice_<lang>_<8 digits>.mp3`` (mono, 48 kHz, written by soundfile) and tab-separated
  ``train.tsv``, ``dev.tsv``, ``test.tsv``, ``validated.tsv`` (their union) with the v17 header
  :data:`asrprune.synth.layouts.CV_HEADER`, unquoted, plus ``clip_durations.tsv`` (``clip``, ``duration[ms]``)
  as in v17;
- zh: an AISHELL-1 folder ``out_dir/aishell-synth/data_aishell/`` with
  ``wav/<split>/<speaker>/BAC009<speaker>W<4 digits>.wav`` (16 kHz, 16-bit, mono) and
  ``transcript/aishell_transcript_v0.8.txt`` (``<uttid> <words separated by spaces>``, sorted);
- with ``transfer_utts`` (``--transfer-test N``): a transfer test split per language, in a second release of
  the same format (:mod:`asrprune.synth.layouts`: ``cv-corpus-synth-transfer-1.0/<lang>/`` whose ``test.tsv``
  holds it, ``aishell-synth-transfer/`` for zh), whose voice shapes, rooms, channels and noise kinds come only
  from settings no train, dev or test clip uses (:mod:`asrprune.synth.conditions`), whose variants are the test
  split's (unseen in training; :mod:`asrprune.synth.voices` says why), and whose sentences are new
  ones made of the other splits' words (so they are all in the lexicon the importer builds);
- ``out_dir/synth_summary.json``: per language its parameters, utterances, hours, speakers and rooms per split,
  the speakers' voices, the noise kinds used and the vocabulary filter's counts.

This module plans, renders and resumes the corpus, keeps its summary and provides the ``synth`` command. Text:
:mod:`asrprune.synth.sentences`. Voices: :mod:`asrprune.synth.voices`. Rooms: :mod:`asrprune.synth.rooms`. Noise:
:mod:`asrprune.synth.noise`. Channels: :mod:`asrprune.synth.channels`. The espeak-ng program:
:mod:`asrprune.synth.espeak`. The two file formats: :mod:`asrprune.synth.layouts`. The planned speakers and
utterances (records): :mod:`asrprune.synth.plan`.

Speakers: a speaker is an espeak-ng voice variant from its split's pool (:func:`asrprune.synth.voices.variant_pools`:
the installed variants that sound like people, split by family into disjoint train, dev and held-out pools
shared by all languages; the test and transfer splits' speakers take the same held-out variants in the same
order), with its own base speaking rate (150-200 words/min), pitch (35-65 of espeak's
0-99), vocal tract and intonation (:class:`asrprune.synth.voices.VoiceShape`); each utterance varies the rate by
up to +-6 % and the pitch by up to +-5 around them, and reads its words in 1-3 spans at different rates.
Speakers are held out: every split of a language has its own speakers (default 48 train, 8 dev, 8 test, 8
transfer; no train or dev variant speaks in another split), utterances go to a split's speakers in turn; a split
with more speakers than variants in its pool
gives a variant to several speakers, each with its own vocal tract. Common Voice metadata is plausible:
``client_id`` a 64-hex-digit hash per speaker, age and gender per speaker (gender from the variant), 2-4
up-votes, fewer down-votes, empty accents/variant/domain/segment as in most real rows.

Pipeline per language and split, in chunks of :data:`BABBLE_CHUNK` utterances: espeak-ng (``--stdout``, 22.05 kHz
WAV) synthesises each utterance and Praat gives it the speaker's voice shape, then each is padded, reverberated
in its room (a bank of simulated rooms per seed and condition, made once per run), mixed with noise (babble
talkers come from the same chunk), passed through its channel, resampled with torchaudio to the format's rate
and written. Both steps run on a pool of ``jobs`` threads (espeak runs as a subprocess; numpy, scipy, torch,
pedalboard and libsndfile release the GIL for their heavy parts).

Deterministic: every random choice comes from a generator seeded by (seed, language, purpose[, split,
index]), so a seed fixes sentences, speakers and audio regardless of ``jobs`` or of what a previous run left.
Resumable: files are written under a temporary name and renamed; a clip that exists is kept, and the
summary records each language's parameters (written before its first clip), so a second run with the same
parameters only redoes what is missing, and a run with different ones is refused unless ``force`` deletes that
language's folder first.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import shutil
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import soundfile
import torch
import torchaudio
from tqdm import tqdm

from asrprune.cli_options import add_out, add_seed
from asrprune.errors import InputError
from asrprune.phonology.languages import get_language
from asrprune.synth import channels, noise, rooms, sentences, voices
from asrprune.synth.conditions import SPLIT_CONDITION, UNSEEN
from asrprune.synth.espeak import ESPEAK_SAMPLE_RATE, espeak_speech, espeak_version, installed_variants
from asrprune.synth.layouts import CV_AGES, CorpusLayout, layout_for, write_text
from asrprune.synth.plan import PlannedUtterance, Speaker

SYNTH_VERSION = 2  # bump when the same parameters would give different audio or text
ALL_LANGS = ("de", "fr", "es", "it", "pl", "zh")
SPLITS = ("train", "dev", "test")  # the main release's splits
TRANSFER = "transfer"  # the transfer test split, written as the test split of a second release
ALL_SPLITS = (*SPLITS, TRANSFER)
SUMMARY_FILE = "synth_summary.json"

# Per-language defaults (utterances per split): the mini recipe's four languages, smaller pl/zh sets for
# cross-lingual experiments.
DEFAULT_UTTERANCES = {
    **{lang: {"train": 600, "dev": 100, "test": 100} for lang in ("de", "fr", "es", "it")},
    **{lang: {"train": 200, "dev": 50, "test": 100} for lang in ("pl", "zh")},
}
DEFAULT_SPEAKERS = {"train": 48, "dev": 8, "test": 8, TRANSFER: 8}
SPEAKER_RATE_WPM = (150, 200)
SPEAKER_PITCH = (35, 65)
RATE_JITTER = 0.06  # relative
PITCH_JITTER = 5  # espeak pitch units
BABBLE_CHUNK = 100  # utterances synthesised together; babble talkers come from the same chunk


class SynthError(InputError):
    """The corpus cannot be (re)generated as asked; the message says why and what to do."""


def synthesise(
    out_dir: str | Path,
    langs: Sequence[str] = ALL_LANGS,
    train_utts: int | Mapping[str, int] | None = None,
    dev_utts: int | Mapping[str, int] | None = None,
    test_utts: int | Mapping[str, int] | None = None,
    transfer_utts: int | Mapping[str, int] | None = None,
    speakers: tuple[int, int, int, int] = tuple(DEFAULT_SPEAKERS.values()),
    seed: int = 0,
    snr_db: tuple[float, float] = noise.DEFAULT_SNR_DB,
    noise_kinds: Sequence[str] = noise.SEEN_NOISE_KINDS,
    transfer_noise_kinds: Sequence[str] = noise.UNSEEN_NOISE_KINDS,
    top_n: int = sentences.DEFAULT_TOP_N,
    freq_exponent: float = sentences.DEFAULT_FREQ_EXPONENT,
    words_per_sentence: tuple[int, int] | None = None,
    jobs: int = 2,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Write the synthetic corpus for ``langs`` under ``out_dir`` and return the summary (also saved as JSON).

    ``*_utts``: utterances per split, ``None`` for :data:`DEFAULT_UTTERANCES` (no transfer split), an int for
    every language or a mapping language -> int (languages not in it keep their default). ``speakers``:
    speakers per split (train, dev, test, transfer). ``snr_db``: (low, high) in dB. ``noise_kinds``: those of
    train, dev and test; ``transfer_noise_kinds``: the transfer split's, disjoint from them.
    ``words_per_sentence``: (min, max), ``None`` for the language's default. Raises :class:`SynthError` if a
    language was made before with other parameters (unless ``force``) or if the request cannot be met,
    :class:`asrprune.synth.espeak.EspeakError` if espeak-ng is missing or fails.
    """
    out_dir = Path(out_dir)
    if jobs < 1:
        raise SynthError(f"jobs must be at least 1, got {jobs}")
    if len(speakers) != len(ALL_SPLITS):
        raise SynthError(f"speakers must give (train, dev, test, transfer) counts, got {speakers}")
    for lang in langs:
        get_language(lang)
    speaker_counts = dict(zip(ALL_SPLITS, speakers))
    sizes = {split: _sizes_per_language(value, langs, split) for split, value in
             zip(ALL_SPLITS, (train_utts, dev_utts, test_utts, transfer_utts))}
    for kinds in (noise_kinds, transfer_noise_kinds):
        noise.check_noise_settings(snr_db, kinds)
    if set(noise_kinds) & set(transfer_noise_kinds):
        raise SynthError(f"the transfer split's noise kinds {list(transfer_noise_kinds)} must not be used in the "
                         f"other splits ({list(noise_kinds)})")
    try:
        pools = voices.variant_pools(installed_variants(), _rng(seed, "variants"))
    except ValueError as err:
        raise SynthError(str(err)) from None
    version = espeak_version()
    summary = load_summary(out_dir)
    params_by_lang = {}
    for lang in langs:
        params = _jsonable({
            "synth_version": SYNTH_VERSION,
            "espeak_ng": version,
            "seed": seed,
            "utterances": {split: sizes[split][lang] for split in ALL_SPLITS},
            "speakers": speaker_counts,
            "snr_db": list(snr_db),
            "noise_kinds": list(noise_kinds),
            "transfer_noise_kinds": list(transfer_noise_kinds),
            "top_n": top_n,
            "freq_exponent": freq_exponent,
            "words_per_sentence": list(words_per_sentence or sentences.default_words_per_sentence(lang)),
        })
        _check_speakers(lang, params)
        params_by_lang[lang] = params
    _clear_conflicting(out_dir, params_by_lang, summary, force)
    conditions = {SPLIT_CONDITION[split] for p in params_by_lang.values() for split, n in p["utterances"].items() if n}
    banks = {condition: room_bank(seed, condition) for condition in sorted(conditions)}
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for lang, params in params_by_lang.items():
            summary["languages"][lang] = {"params": params, "complete": False}
            save_summary(out_dir, summary)
            summary["languages"][lang] = _synthesise_language(out_dir, lang, params, pools, banks, pool, progress)
            save_summary(out_dir, summary)
    return summary


def load_summary(out_dir: Path) -> dict:
    """The summary saved in ``out_dir``, or an empty one."""
    path = out_dir / SUMMARY_FILE
    if not path.is_file():
        return {"languages": {}}
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SynthError(f"{path}: not valid JSON ({err}); delete it and the corpus folders to start over") from None
    if not isinstance(summary.get("languages"), dict):
        raise SynthError(f"{path}: no 'languages' object; not a synth summary")
    return summary


def save_summary(out_dir: Path, summary: dict) -> None:
    """Recompute the totals and write ``summary`` to ``out_dir/synth_summary.json`` atomically."""
    done = [entry for entry in summary["languages"].values() if entry.get("complete")]
    summary["total_utterances"] = sum(s["utterances"] for entry in done for s in entry["splits"].values())
    summary["total_hours"] = round(sum(s["hours"] for entry in done for s in entry["splits"].values()), 4)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / SUMMARY_FILE, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


def _synthesise_language(
    out_dir: Path,
    lang: str,
    params: dict,
    pools: dict[str, tuple[tuple[str, str], ...]],
    banks: dict[str, tuple[tuple[rooms.Room, np.ndarray], ...]],
    pool: concurrent.futures.Executor,
    progress: bool,
) -> dict:
    """Make (or complete) one language's corpus and return its summary entry."""
    layouts = {False: layout_for(out_dir, lang), True: layout_for(out_dir, lang, transfer=True)}
    vocabulary = sentences.build_vocabulary(lang, params["top_n"], params["freq_exponent"])
    plans = _plan_language(lang, params, vocabulary, pools, layouts)
    durations = {
        split: _render_split(lang, split, plans[split], layouts[split == TRANSFER], banks, pool, progress)
        for split in ALL_SPLITS
    }
    layouts[False].write_index({split: plans[split] for split in SPLITS}, {split: durations[split] for split in SPLITS})
    if plans[TRANSFER]:
        layouts[True].write_index(_transfer_as_test(plans), _transfer_as_test(durations))
    kinds = collections.Counter(p.degradation.kind for split in ALL_SPLITS for p in plans[split])
    used_rooms = {(SPLIT_CONDITION[split], p.room) for split in ALL_SPLITS for p in plans[split] if p.room is not None}
    return {
        "params": params,
        "complete": True,
        "format": layouts[False].format_name,
        "path": layouts[False].root.relative_to(out_dir).as_posix(),
        "transfer_path": layouts[True].root.relative_to(out_dir).as_posix() if plans[TRANSFER] else None,
        "vocabulary": {"words": len(vocabulary.words), "dropped": vocabulary.dropped},
        "splits": {
            split: {
                "utterances": len(plans[split]),
                "hours": round(sum(durations[split]) / 3600, 4),
                "speakers": sorted({p.speaker.speaker_id for p in plans[split]}),
                "rooms": sorted({_room(banks, split, p).room_id for p in plans[split] if p.room is not None}),
            }
            for split in ALL_SPLITS
        },
        "noise_kinds_used": dict(sorted(kinds.items())),
        "speakers": [dataclasses.asdict(s) for s in {p.speaker: None for split in ALL_SPLITS for p in plans[split]}],
        "rooms": _jsonable([dataclasses.asdict(banks[c][i][0]) for c, i in sorted(used_rooms)]),
    }


def planned_utterances(out_dir: Path, lang: str) -> dict[str, list[PlannedUtterance]]:
    """Every planned utterance of ``lang``'s finished corpus under ``out_dir``, by split (the settings each clip
    was made with: speaker, voice shape, room, noise, channel), re-drawn from the parameters its summary recorded;
    plans depend on those parameters and the installed espeak-ng variants alone."""
    entry = load_summary(out_dir)["languages"].get(lang)
    if not entry or not entry.get("complete"):
        raise SynthError(f"{out_dir / SUMMARY_FILE}: no finished corpus for {lang}")
    params = entry["params"]
    pools = voices.variant_pools(installed_variants(), _rng(params["seed"], "variants"))
    layouts = {False: layout_for(out_dir, lang), True: layout_for(out_dir, lang, transfer=True)}
    vocabulary = sentences.build_vocabulary(lang, params["top_n"], params["freq_exponent"])
    return _plan_language(lang, params, vocabulary, pools, layouts)


def _plan_language(
    lang: str,
    params: dict,
    vocabulary: sentences.Vocabulary,
    pools: dict[str, tuple[tuple[str, str], ...]],
    layouts: dict[bool, CorpusLayout],
) -> dict[str, list[PlannedUtterance]]:
    """Draw every utterance's content, speaker, voice settings, room, degradation, channel and clip name."""
    seed, counts = params["seed"], params["utterances"]
    speakers = {split: _plan_speakers(lang, split, params, pools) for split in ALL_SPLITS}
    words_per_sentence = tuple(params["words_per_sentence"])
    main_sentences = sentences.make_sentences(
        vocabulary, sum(counts[split] for split in SPLITS), _rng(seed, lang, "sentences"), words_per_sentence
    )
    transfer_vocabulary = vocabulary
    if main_sentences:
        transfer_vocabulary = sentences.restrict_vocabulary(vocabulary, {w for s in main_sentences for w in s})
    transfer_sentences = sentences.make_sentences(
        transfer_vocabulary, counts[TRANSFER], _rng(seed, lang, "transfer sentences"), words_per_sentence,
        exclude=set(main_sentences),
    )
    speakers_per_utterance = {
        split: [speakers[split][i % len(speakers[split])] for i in range(counts[split])] for split in ALL_SPLITS
    }
    clips = layouts[False].clip_names({s: speakers_per_utterance[s] for s in SPLITS}, _rng(seed, lang, "clips"))
    clips[TRANSFER] = layouts[True].clip_names(
        {"train": [], "dev": [], "test": speakers_per_utterance[TRANSFER]}, _rng(seed, lang, "transfer clips")
    )["test"]
    words = {TRANSFER: transfer_sentences}
    start = 0
    for split in SPLITS:
        words[split] = main_sentences[start:start + counts[split]]
        start += counts[split]
    return {
        split: [
            _plan_utterance(lang, params, split, index, speaker, words[split][index], clips[split][index])
            for index, speaker in enumerate(speakers_per_utterance[split])
        ]
        for split in ALL_SPLITS
    }


def _plan_speakers(
    lang: str, split: str, params: dict, pools: dict[str, tuple[tuple[str, str], ...]]
) -> list[Speaker]:
    """The split's speakers: voice variants from its pool (:data:`asrprune.synth.voices.SPLIT_POOL`) in a random
    order per language and pool (repeated when there are more speakers than variants), so the test and transfer
    splits' speaker ``k`` share a variant; everything else about a speaker is drawn per split. Ids ``S0001``...
    are numbered over the splits in :data:`ALL_SPLITS` order."""
    seed, counts = params["seed"], params["speakers"]
    pool = voices.SPLIT_POOL[split]
    variants = pools[pool]
    order = _rng(seed, lang, "speaker variants", pool).permutation(len(variants))
    rng = _rng(seed, lang, "speakers", split)
    first = sum(counts[s] for s in ALL_SPLITS[:ALL_SPLITS.index(split)]) + 1
    speakers = []
    for number in range(counts[split]):
        variant, gender = variants[order[number % len(variants)]]
        speaker_id = f"S{first + number:04d}"
        speakers.append(Speaker(
            speaker_id=speaker_id,
            split=split,
            variant=variant,
            gender=gender,
            age=str(rng.choice(CV_AGES)),
            rate_wpm=int(rng.integers(SPEAKER_RATE_WPM[0], SPEAKER_RATE_WPM[1] + 1)),
            pitch=int(rng.integers(SPEAKER_PITCH[0], SPEAKER_PITCH[1] + 1)),
            shape=voices.draw_voice_shape(rng, SPLIT_CONDITION[split]),
            client_id=hashlib.sha256(f"asrprune-synth:{seed}:{lang}:{speaker_id}".encode()).hexdigest(),
        ))
    return speakers


def _plan_utterance(
    lang: str, params: dict, split: str, index: int, speaker: Speaker, words: tuple[str, ...], clip: str
) -> PlannedUtterance:
    """One utterance's random choices, from a generator seeded by (seed, lang, split, index) alone."""
    rng = _rng(params["seed"], lang, split, str(index))
    condition = SPLIT_CONDITION[split]
    split_size = params["utterances"][split]
    chunk_start = index // BABBLE_CHUNK * BABBLE_CHUNK
    others = [i for i in range(chunk_start, min(chunk_start + BABBLE_CHUNK, split_size)) if i != index]
    split_kinds = params["transfer_noise_kinds" if condition == UNSEEN else "noise_kinds"]
    kinds = [kind for kind in split_kinds if others or kind != "babble"]
    if not kinds:
        raise SynthError(
            f"{lang} {split}: utterance {index} is alone in its chunk of {BABBLE_CHUNK}, so it has no babble "
            "talkers; add another noise kind or change the split size"
        )
    degradation = noise.draw_degradation(rng, tuple(params["snr_db"]), kinds)
    babble_sources: tuple[int, ...] = ()
    if degradation.kind == "babble":
        talkers = int(rng.integers(noise.BABBLE_TALKERS[0], noise.BABBLE_TALKERS[1] + 1))
        babble_sources = tuple(sorted(int(i) for i in rng.choice(others, min(talkers, len(others)), replace=False)))
    up_votes = int(rng.integers(2, 5))
    return PlannedUtterance(
        split=split,
        index=index,
        speaker=speaker,
        words=words,
        rate_wpm=round(speaker.rate_wpm * (1 + rng.uniform(-RATE_JITTER, RATE_JITTER))),
        pitch=int(np.clip(speaker.pitch + rng.integers(-PITCH_JITTER, PITCH_JITTER + 1), 0, 99)),
        rate_spans=voices.draw_rate_spans(rng, len(words), condition),
        voice_seed=int(rng.integers(voices.MAX_PRAAT_SEED + 1)),
        room=rooms.draw_room_choice(rng, condition),
        degradation=degradation,
        channel=channels.draw_channel(rng, condition),
        babble_sources=babble_sources,
        clip=clip,
        up_votes=up_votes,
        down_votes=int(rng.integers(0, up_votes - 1)),  # up - down >= 2, Common Voice's bar for "validated"
    )


def _render_split(
    lang: str,
    split: str,
    plans: list[PlannedUtterance],
    layout: CorpusLayout,
    banks: dict[str, tuple[tuple[rooms.Room, np.ndarray], ...]],
    pool: concurrent.futures.Executor,
    progress: bool,
) -> list[float]:
    """Make the split's missing clips; return every clip's duration in seconds (in plan order).

    Work is queued chunk by chunk, each chunk's speech jobs before its render jobs, so a render job waiting for
    its speech never waits on a job queued behind it (the pool runs jobs first in, first out); at most
    two chunks are in flight, which keeps the pool busy and bounds the speech held in memory.
    """
    voice = get_language(lang).espeak_voice
    durations = [0.0] * len(plans)
    in_flight: collections.deque[list[tuple[int, concurrent.futures.Future]]] = collections.deque()

    def collect_oldest_chunk() -> None:
        for index, future in in_flight.popleft():
            durations[index] = future.result()
            bar.update()

    with tqdm(total=len(plans), desc=f"synth {lang} {split}", unit="utt", disable=not progress) as bar:
        for start in range(0, len(plans), BABBLE_CHUNK):
            missing = []
            for plan in plans[start:start + BABBLE_CHUNK]:
                if (layout.root / plan.clip).is_file():
                    durations[plan.index] = soundfile.info(str(layout.root / plan.clip)).duration
                    bar.update()
                else:
                    missing.append(plan)
            needed = sorted({p.index for p in missing} | {i for p in missing for i in p.babble_sources})
            speech = {i: pool.submit(_speaker_speech, plans[i], lang, voice) for i in needed}
            in_flight.append([(p.index, pool.submit(_render_clip, p, speech, banks, layout)) for p in missing])
            if len(in_flight) > 1:
                collect_oldest_chunk()
        while in_flight:
            collect_oldest_chunk()
    return durations


def _speaker_speech(plan: PlannedUtterance, lang: str, voice: str) -> np.ndarray:
    """The planned sentence as its speaker says it, dry: espeak-ng's reading (variant, rate spans, pitch)
    through the speaker's voice shape; float32 (samples,) at 22.05 kHz."""
    text = voices.rate_ssml(sentences.espeak_text(plan.words, lang), plan.rate_spans)
    speech = espeak_speech(text, f"{voice}+{plan.speaker.variant}", plan.rate_wpm, plan.pitch, ssml=True)
    return voices.change_voice(speech, ESPEAK_SAMPLE_RATE, plan.speaker.shape, plan.voice_seed)


def _render_clip(
    plan: PlannedUtterance,
    speech: dict[int, concurrent.futures.Future],
    banks: dict[str, tuple[tuple[rooms.Room, np.ndarray], ...]],
    layout: CorpusLayout,
) -> float:
    """Pad, reverberate, add noise to, pass through the channel, resample and write one clip (speech from
    ``speech``'s futures by split index); return its duration in seconds."""
    talkers = [speech[i].result() for i in plan.babble_sources]
    audio = noise.pad(speech[plan.index].result(), ESPEAK_SAMPLE_RATE, plan.degradation)
    if plan.room is not None:
        audio = rooms.reverberate(audio, banks[SPLIT_CONDITION[plan.split]][plan.room][1])
    audio = noise.add_noise(audio, ESPEAK_SAMPLE_RATE, plan.degradation, talkers)
    audio = channels.apply_channel(audio, ESPEAK_SAMPLE_RATE, plan.channel)
    resampled = torchaudio.functional.resample(torch.from_numpy(audio), ESPEAK_SAMPLE_RATE, layout.sample_rate)
    layout.write_clip(layout.root / plan.clip, resampled.numpy())
    return len(resampled) / layout.sample_rate


def _transfer_as_test(by_split: dict[str, list]) -> dict[str, list]:
    """The transfer split's entry of ``by_split`` as the test split of a release with empty train and dev."""
    return {"train": [], "dev": [], "test": by_split[TRANSFER]}


def _room(banks: dict, split: str, plan: PlannedUtterance) -> rooms.Room:
    """The room ``plan`` (of ``split``) is recorded in."""
    return banks[SPLIT_CONDITION[split]][plan.room][0]


def _check_speakers(lang: str, params: dict) -> None:
    """Every split with utterances needs a speaker."""
    for split in ALL_SPLITS:
        if params["utterances"][split] > 0 and params["speakers"][split] < 1:
            raise SynthError(f"{lang} {split}: {params['utterances'][split]} utterances but no speakers")


def _clear_conflicting(out_dir: Path, params_by_lang: dict[str, dict], summary: dict, force: bool) -> None:
    """Refuse, or with ``force`` delete, language folders (both releases) made with other parameters or of
    unknown origin.

    All languages are checked before anything is deleted; ``summary`` loses the deleted languages' entries.
    """
    summary_file = out_dir / SUMMARY_FILE
    conflicts = {}
    for lang, params in params_by_lang.items():
        roots = [layout_for(out_dir, lang, transfer).root for transfer in (False, True)]
        previous = summary["languages"].get(lang)
        if previous is not None and previous.get("params") != params:
            differing = sorted(k for k in params if previous.get("params", {}).get(k) != params[k])
            conflicts[lang] = f"{summary_file}: {lang} was made with other parameters (differing: {differing})"
        elif previous is None and any(root.exists() for root in roots):
            conflicts[lang] = f"{' or '.join(map(str, roots))} exists but {summary_file} has no record of it"
    if conflicts and not force:
        raise SynthError("; ".join(conflicts.values()) + "; use another output folder, or force (--force) to "
                         "delete and redo these languages")
    for lang in conflicts:
        for transfer in (False, True):
            shutil.rmtree(layout_for(out_dir, lang, transfer).root, ignore_errors=True)
        summary["languages"].pop(lang, None)


@functools.lru_cache(maxsize=4)
def room_bank(seed: int, condition: str) -> tuple[tuple[rooms.Room, np.ndarray], ...]:
    """The bank of simulated rooms (with RIRs at 22.05 kHz) of ``condition`` for ``seed``, shared by all languages
    and simulated once per process (:func:`asrprune.synth.rooms.room_bank`)."""
    return rooms.room_bank(_rng(seed, "rooms", condition), condition, ESPEAK_SAMPLE_RATE)


def _sizes_per_language(value: int | Mapping[str, int] | None, langs: Sequence[str], split: str) -> dict[str, int]:
    """Resolve one split's size argument into {language: utterances}."""
    sizes = {lang: DEFAULT_UTTERANCES[lang].get(split, 0) for lang in langs}
    if isinstance(value, int):
        sizes = dict.fromkeys(langs, value)
    elif value is not None:
        unknown = sorted(set(value) - set(langs))
        if unknown:
            raise SynthError(f"{split} sizes given for {unknown}, which are not among the languages {list(langs)}")
        sizes.update(value)
    for lang, n in sizes.items():
        if n < 0:
            raise SynthError(f"{lang} {split}: negative number of utterances ({n})")
    return sizes


def _rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator determined by ``seed`` and the string ``keys`` (CRC32, stable across runs unlike ``hash``)."""
    if seed < 0:
        raise SynthError(f"seed must be non-negative, got {seed}")
    return np.random.default_rng(np.random.SeedSequence([seed, *(zlib.crc32(k.encode()) for k in keys)]))


def _jsonable(value):
    """``value`` as it reads back from JSON (tuples become lists), so saved and new parameters compare equal."""
    return json.loads(json.dumps(value))


# ----------------------------------------------------------------------------------------------- command line

_CLI_DESCRIPTION = """\
Generate a synthetic multilingual speech corpus with espeak-ng, written in the formats of the real corpora so
that the Common Voice and AISHELL importers read it unchanged:

  de fr es it pl  OUT_DIR/cv-corpus-synth-1.0/<lang>/{clips/*.mp3 (48 kHz), train,dev,test,validated.tsv}
  zh              OUT_DIR/aishell-synth/data_aishell/{wav/<split>/<spk>/*.wav (16 kHz), transcript/...txt}
  summary         OUT_DIR/synth_summary.json (utterances, hours, speakers per split, parameters)

  transfer test    OUT_DIR/cv-corpus-synth-transfer-1.0/<lang>/ (test.tsv; train/dev.tsv empty),
                   OUT_DIR/aishell-synth-transfer/data_aishell/ for zh (with --transfer-test N)

Sentences are 3-10 random words (zh 3-8) from wordfreq's most frequent words, drawn by frequency**0.5 so that
rarer words occur too. Each language has its own speakers: an espeak voice variant (of ~80 installed ones,
klatt included, split by family into disjoint train/dev/held-out pools), rate, pitch, and a vocal tract
and intonation changed with Praat; each sentence is read in 1-3 spans at different rates. dev and test speakers
are held out from training and from each other. Every clip gets silence padding, a simulated room
(pyroomacoustics) or none, white, pink, brown, hum or babble noise at a random SNR, and a channel: band-limiting,
clipping, low-bitrate mp3, level. The transfer test split's speakers read with the test speakers' held-out
variants (so the two compare on the same voices), reshaped with vocal tracts, intonation and rate spans, in
rooms, channels (mp3 qualities, cut-offs, clipping drives, levels) and noise kinds (blue, crackle) that no
train/dev/test clip uses. Same seed and sizes give the same corpus; rerunning completes an interrupted run and
refuses to mix in different parameters unless --force.

Sizes: N for every language, or LANG=N,... to override the defaults (de/fr/es/it 600/100/100,
pl/zh 200/50/100 train/dev/test utterances, no transfer test): about 0.7 h per de/fr/es/it language.

example: asrprune synth --out corpora --langs de,fr,es,it --transfer-test 100 --jobs 2
"""


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` sub-command."""
    parser = subparsers.add_parser(
        "synth",
        description=_CLI_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_out(parser, "output folder (created)", dest="out_dir", type=Path)
    parser.add_argument("--langs", type=_language_list, default=ALL_LANGS,
                        help=f"comma-separated languages (default {','.join(ALL_LANGS)})")
    for split in SPLITS:
        parser.add_argument(f"--{split}-utts", type=_size_argument, default=None, metavar="N|LANG=N,...",
                            help=f"{split} utterances per language (default per language, see above)")
    parser.add_argument("--transfer-test", dest="transfer_utts", type=_size_argument, default=None,
                        metavar="N|LANG=N,...", help="transfer test utterances per language (default 0: none)")
    for split, count in DEFAULT_SPEAKERS.items():
        parser.add_argument(f"--{split}-speakers", type=int, default=count,
                            help=f"{split} speakers per language (default {count})")
    add_seed(parser)
    parser.add_argument("--snr-db", type=float, nargs=2, default=noise.DEFAULT_SNR_DB, metavar=("LOW", "HIGH"),
                        help="SNR range in dB, drawn uniformly per clip (default %(default)s; babble +10 dB)")
    parser.add_argument("--noise-kinds", type=_noise_kind_list, default=noise.SEEN_NOISE_KINDS,
                        help=f"train/dev/test noise: comma-separated subset of {','.join(noise.NOISE_KINDS)} "
                             f"(default {','.join(noise.SEEN_NOISE_KINDS)})")
    parser.add_argument("--transfer-noise-kinds", type=_noise_kind_list, default=noise.UNSEEN_NOISE_KINDS,
                        help="transfer test noise, none of --noise-kinds "
                             f"(default {','.join(noise.UNSEEN_NOISE_KINDS)})")
    parser.add_argument("--top-n", type=int, default=sentences.DEFAULT_TOP_N,
                        help="vocabulary: the N most frequent wordfreq words (default %(default)s)")
    parser.add_argument("--freq-exponent", type=float, default=sentences.DEFAULT_FREQ_EXPONENT,
                        help="words drawn with probability ~ frequency**E (default %(default)s; 1 = natural)")
    parser.add_argument("--words-per-sentence", type=int, nargs=2, default=None, metavar=("MIN", "MAX"),
                        help="sentence length in words (default 3 10, zh 3 8)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel espeak/encoding threads (default 2)")
    parser.add_argument("--force", action="store_true",
                        help="delete and redo a language made before with other parameters")
    parser.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> dict:
    summary = synthesise(
        args.out_dir,
        langs=args.langs,
        train_utts=args.train_utts,
        dev_utts=args.dev_utts,
        test_utts=args.test_utts,
        transfer_utts=args.transfer_utts,
        speakers=(args.train_speakers, args.dev_speakers, args.test_speakers, args.transfer_speakers),
        seed=args.seed,
        snr_db=tuple(args.snr_db),
        noise_kinds=args.noise_kinds,
        transfer_noise_kinds=args.transfer_noise_kinds,
        top_n=args.top_n,
        freq_exponent=args.freq_exponent,
        words_per_sentence=tuple(args.words_per_sentence) if args.words_per_sentence else None,
        jobs=args.jobs,
        force=args.force,
    )
    for lang in args.langs:
        splits = summary["languages"][lang]["splits"]
        print(f"{lang}: " + ", ".join(f"{s} {v['utterances']} utts {v['hours']:.2f} h" for s, v in splits.items()))
    print(f"total {summary['total_utterances']} utterances, {summary['total_hours']:.2f} h; "
          f"summary in {Path(args.out_dir) / SUMMARY_FILE}")
    return summary


def _language_list(value: str) -> tuple[str, ...]:
    langs = tuple(lang.strip() for lang in value.split(",") if lang.strip())
    for lang in langs:
        try:
            get_language(lang)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return langs


def _noise_kind_list(value: str) -> tuple[str, ...]:
    kinds = tuple(kind.strip() for kind in value.split(",") if kind.strip())
    try:
        noise.check_noise_settings(noise.DEFAULT_SNR_DB, kinds)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return kinds


def _size_argument(value: str) -> int | dict[str, int]:
    """``600`` -> 600; ``de=600,zh=200`` -> {'de': 600, 'zh': 200}."""
    try:
        if "=" not in value:
            return int(value)
        return {lang.strip(): int(n) for lang, n in (item.split("=") for item in value.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected N or LANG=N,LANG=N,...") from None
