"""Word n-gram language models in ARPA format, for :class:`asrprune.decoding.lexicon_beam.LexiconBeamDecoder`.

Hand-written because KenLM's estimator ``lmplz`` is a C++ program that is not on PyPI, and the Python packages
that are (kenlm, flashlight-text) only *read* models. flashlight-text bundles KenLM's ARPA reader, so the file
written here is what the decoder loads.

Smoothing: interpolated Witten-Bell, written in ARPA backoff form. For a history ``h`` seen ``C(h)`` times,
followed by ``T(h)`` distinct words, with ``h'`` = ``h`` without its first word::

    P(w | h) = (c(h w) + T(h) * P(w | h')) / (C(h) + T(h))     for seen ``h w``
    P(w | h) = T(h) / (C(h) + T(h)) * P(w | h')                   otherwise, so backoff(h) = T(h) / (C(h) + T(h))

and the unigram level interpolates with the uniform distribution over the vocabulary (seen words, ``</s>`` and
``<unk>``), which gives ``<unk>`` (every word absent from the training text) a small non-zero probability.
Each history's distribution sums to 1 over the vocabulary. ``<s>`` is only ever a history (log10 prob -99).
Each sentence is padded as ``<s> w1 ... wn </s>``.
"""
from __future__ import annotations

import argparse
import collections
import math
from pathlib import Path
from typing import Iterable

from asrprune.cli_options import add_lang, add_out
from asrprune.data.kaldi_dir import read_data_dir

SENTENCE_START = "<s>"
SENTENCE_END = "</s>"
UNKNOWN_WORD = "<unk>"
_NEVER_LOG10_PROB = -99.0  # ARPA convention for <s>, which is never predicted

NGram = tuple[str, ...]


def train_arpa(sentences: Iterable[list[str]], order: int, path: str | Path) -> list[int]:
    """Estimate an interpolated Witten-Bell word n-gram LM of ``order`` from ``sentences`` and write it as ARPA.

    Args:
        sentences: word lists (already normalised and tokenised); ``<s>``/``</s>`` are added here. An empty list
            is a valid sentence (it teaches ``P(</s> | <s>)``).
        order: n-gram order, at least 2 (KenLM refuses unigram models).
        path: ARPA file to write (parent directories are created).

    Returns:
        the number of n-grams written per order (``[unigrams, bigrams, ...]``).
    """
    if order < 2:
        raise ValueError(f"n-gram order must be at least 2 (KenLM cannot load unigram models), got {order}")
    counts = _count_ngrams(sentences, order)
    if not counts[0]:
        raise ValueError("no sentences to train the language model on")
    followers = _follower_stats(counts)
    log10_probs = _interpolated_log10_probs(counts, followers)
    _write_arpa(Path(path), log10_probs, followers, order)
    return [len(level) for level in log10_probs]


def _count_ngrams(sentences: Iterable[list[str]], order: int) -> list[collections.Counter[NGram]]:
    """``counts[k - 1][ngram]`` for every k-gram (k <= ``order``) of the padded sentences; ``<s>`` alone is not
    counted as a unigram because it is never predicted."""
    counts: list[collections.Counter[NGram]] = [collections.Counter() for _ in range(order)]
    for number, sentence in enumerate(sentences, 1):
        for word in sentence:
            if not word or any(ch.isspace() for ch in word) or word in (SENTENCE_START, SENTENCE_END):
                raise ValueError(f"sentence {number}: word {word!r} is empty, has whitespace or is reserved")
        padded = (SENTENCE_START, *sentence, SENTENCE_END)
        for k in range(1, order + 1):
            for start in range(1 if k == 1 else 0, len(padded) - k + 1):
                counts[k - 1][padded[start:start + k]] += 1
    return counts


def _follower_stats(counts: list[collections.Counter[NGram]]) -> dict[NGram, tuple[int, int]]:
    """For every history ``h`` (the first words of a counted n-gram): ``(C(h), T(h))`` = total count of the
    n-grams it starts and how many distinct words follow it. The empty history ``()`` covers unigrams."""
    followers: dict[NGram, list[int]] = collections.defaultdict(lambda: [0, 0])
    for level in counts:
        for ngram, count in level.items():
            stats = followers[ngram[:-1]]
            stats[0] += count
            stats[1] += 1
    return {history: (total, types) for history, (total, types) in followers.items()}


def _interpolated_log10_probs(
    counts: list[collections.Counter[NGram]], followers: dict[NGram, tuple[int, int]]
) -> list[dict[NGram, float]]:
    """log10 interpolated Witten-Bell probability of every counted n-gram, per order; unigrams also get
    ``<unk>`` and ``</s>`` (and ``<s>`` at the conventional -99)."""
    vocabulary = {ngram[0] for ngram in counts[0]} | {SENTENCE_END, UNKNOWN_WORD}
    total, types = followers[()]
    probs: list[dict[NGram, float]] = [
        {(word,): (counts[0][(word,)] + types / len(vocabulary)) / (total + types) for word in vocabulary}
    ]
    for level in counts[1:]:
        lower = probs[-1]
        current = {}
        for ngram, count in level.items():
            total, types = followers[ngram[:-1]]
            current[ngram] = (count + types * lower[ngram[1:]]) / (total + types)
        probs.append(current)
    log10_probs = [{ngram: math.log10(p) for ngram, p in level.items()} for level in probs]
    log10_probs[0][(SENTENCE_START,)] = _NEVER_LOG10_PROB
    return log10_probs


def _write_arpa(
    path: Path, log10_probs: list[dict[NGram, float]], followers: dict[NGram, tuple[int, int]], order: int
) -> None:
    """Write the ARPA file: header with counts, then each order's n-grams (sorted) with log10 prob and, below the
    top order, log10 backoff weight ``T(h) / (C(h) + T(h))`` (0 for n-grams never followed by a word)."""
    lines = ["", "\\data\\"]
    lines += [f"ngram {k}={len(level)}" for k, level in enumerate(log10_probs, 1)]
    for k, level in enumerate(log10_probs, 1):
        lines += ["", f"\\{k}-grams:"]
        for ngram in sorted(level):
            entry = f"{level[ngram]:.7f}\t{' '.join(ngram)}"
            if k < order:
                total, types = followers.get(ngram, (0, 0))
                backoff = math.log10(types / (total + types)) if types else 0.0
                entry += f"\t{backoff:.7f}"
            lines.append(entry)
    lines += ["", "\\end\\", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(path)


def arpa_vocabulary(path: str | Path) -> set[str]:
    """The words of the unigram section of the ARPA file ``path`` (including ``<s>``, ``</s>``, ``<unk>``).

    Raises ``ValueError`` naming the file if it has no ``\\1-grams:`` section (e.g. a KenLM binary model)."""
    words: set[str] = set()
    in_unigrams = False
    with open(path, encoding="utf-8", errors="replace") as lines:
        for lineno, line in enumerate(lines, 1):
            fields = line.split()
            if line.strip() == "\\1-grams:":
                in_unigrams = True
            elif in_unigrams and line.startswith("\\"):
                return words
            elif in_unigrams and fields:
                if len(fields) < 2:
                    raise ValueError(f"{path}:{lineno}: unigram line needs a log10 probability and a word")
                words.add(fields[1])
    if not in_unigrams:
        raise ValueError(f"{path}: no \\1-grams: section, not an ARPA language model")
    return words


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train-lm`` sub-command."""
    parser = subparsers.add_parser(
        "train-lm",
        description=(
            "Estimate an interpolated Witten-Bell word n-gram language model from the 'text' files of Kaldi-style "
            "data directories, keeping only utterances of one language (by utt2lang), and write it in ARPA format "
            "for lexicon beam decoding."
        ),
        epilog="example: asrprune train-lm data/train --lang de --order 3 -o lm/de.arpa",
    )
    parser.add_argument("data_dirs", nargs="+", type=Path, help="Kaldi-style data directories to read")
    add_lang(parser, "language code whose utterances are used (e.g. de, zh)")
    parser.add_argument("--order", type=int, default=3, help="n-gram order (default: 3)")
    add_out(parser, "ARPA file to write", dest="output", type=Path)
    parser.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> None:
    utterances = [utt for data_dir in args.data_dirs for utt in read_data_dir(data_dir)]
    sentences = [utt.text.split() for utt in utterances if utt.lang == args.lang]
    if not sentences:
        raise SystemExit(f"train-lm: no utterances with language {args.lang!r} in {len(args.data_dirs)} data dir(s)")
    ngram_counts = train_arpa(sentences, args.order, args.output)
    summary = ", ".join(f"{k}-grams {n}" for k, n in enumerate(ngram_counts, 1))
    used = f"{len(sentences)} of {len(utterances)} utterances ({args.lang})"
    print(f"train-lm: wrote {args.output} from {used}: {summary}")
