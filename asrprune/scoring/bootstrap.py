"""Per-utterance error counts and paired bootstrap confidence intervals of error-rate differences.

A decoding directory (``asrprune decode``, or a method's ``decode_test_<lang>`` written by ``asrprune prune run``)
holds the hypotheses (``hyp.phones``, ``hyp.text``) but only corpus totals in ``results.json``.
:func:`utterance_errors` re-aligns the hypotheses with the data directory's references (one jiwer alignment, the
scorers' units, so the totals equal ``results.json``'s) and caches the per-utterance counts in
``<decode dir>/utt_errors.<metric>.tsv`` (``uttid<TAB>errors<TAB>ref_units``, errors = S + D + I).

:func:`paired_bootstrap` compares two systems on the same utterances: it resamples utterance indices with
replacement (the same indices for both systems; within each language when several are given) and recomputes the
difference of corpus-level error rates (summed edit errors / summed reference units, in %). Several training seeds
are pooled by summing each utterance's errors over the seeds before the rates are formed, so an utterance is drawn
with all its seeds at once. Over several languages the statistic is the difference of the languages' mean rates
(the macro average the tables report).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from asrprune.files import atomic_write_text
from asrprune.scoring.error_rates import align

# metric -> the hypothesis file asrprune decode writes for it (phones: greedy; words: lexicon beam)
HYPOTHESIS_FILES = {"per": "hyp.phones", "wer": "hyp.text", "cer": "hyp.text"}


@dataclasses.dataclass(frozen=True)
class UtteranceErrors:
    """Per-utterance edit errors (S + D + I) and reference lengths, in the order of ``ids``."""

    ids: tuple[str, ...]
    errors: np.ndarray
    ref_units: np.ndarray

    @property
    def error_rate(self) -> float:
        """Corpus-level error rate in % (summed errors / summed reference units)."""
        return 100.0 * float(self.errors.sum()) / float(self.ref_units.sum())


def per_utterance_counts(metric: str, refs: list, hyps: list) -> tuple[np.ndarray, np.ndarray]:
    """Errors (S + D + I) and reference units of each utterance, from one jiwer alignment in ``metric``'s units
    (``"per"``: phone sequences; ``"wer"``/``"cer"``: strings)."""
    if not refs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    output = align(metric, refs, hyps)
    errors = []
    for chunks in output.alignments:
        count = 0
        for chunk in chunks:
            if chunk.type in ("substitute", "delete"):
                count += chunk.ref_end_idx - chunk.ref_start_idx
            elif chunk.type == "insert":
                count += chunk.hyp_end_idx - chunk.hyp_start_idx
        errors.append(count)
    return np.asarray(errors, dtype=np.int64), np.asarray([len(r) for r in output.references], dtype=np.int64)


def read_utterance_errors(path: Path) -> UtteranceErrors:
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return UtteranceErrors(tuple(r[0] for r in rows), np.asarray([int(r[1]) for r in rows], dtype=np.int64),
                           np.asarray([int(r[2]) for r in rows], dtype=np.int64))


def write_utterance_errors(path: Path, counts: UtteranceErrors) -> None:
    atomic_write_text(path, "".join(f"{i}\t{e}\t{n}\n" for i, e, n in zip(counts.ids, counts.errors, counts.ref_units)))


def utterance_errors(decode_dir: str | Path, data_dir: str | Path, metric: str) -> UtteranceErrors:
    """Per-utterance counts of ``decode_dir`` against the references of ``data_dir`` (``metric`` ``per``, ``wer``
    or ``cer``), read from ``<decode_dir>/utt_errors.<metric>.tsv`` if written after the hypotheses, else computed
    and cached there (a re-decoded directory is counted again). Utterances are sorted by id."""
    from asrprune.data.kaldi_dir import read_data_dir, read_table  # the data layer only where references are read

    decode_dir = Path(decode_dir)
    cache = decode_dir / f"utt_errors.{metric}.tsv"
    hyp_path = decode_dir / HYPOTHESIS_FILES[metric]
    if cache.is_file() and (not hyp_path.is_file() or cache.stat().st_mtime >= hyp_path.stat().st_mtime):
        return read_utterance_errors(cache)
    hyps = read_table(hyp_path)
    utterances = sorted(read_data_dir(data_dir), key=lambda u: u.uttid)
    missing = [u.uttid for u in utterances if u.uttid not in hyps]
    if missing:
        raise ValueError(f"{hyp_path}: no hypothesis for {len(missing)} utterances of {data_dir} ({missing[0]}, ...)")
    if metric == "per":
        refs = [list(u.phones) for u in utterances]
        hyp_list = [hyps[u.uttid].split() for u in utterances]
    else:
        refs = [u.text for u in utterances]
        hyp_list = [hyps[u.uttid] for u in utterances]
    errors, ref_units = per_utterance_counts(metric, refs, hyp_list)
    counts = UtteranceErrors(tuple(u.uttid for u in utterances), errors, ref_units)
    write_utterance_errors(cache, counts)
    return counts


def paired_errors(decodes_a: Sequence, decodes_b: Sequence, data_dir: str | Path, metric: str):
    """Per-utterance errors of two systems' decodings of ``data_dir`` (each a list of decoding directories, one per
    seed), ready for :func:`paired_bootstrap`: ``(errors_a, errors_b, ref_units)``, errors as one array per
    decoding. Raises ValueError naming the directory where a decoding covers other utterances than the first."""
    counts_a = [utterance_errors(d, data_dir, metric) for d in decodes_a]
    counts_b = [utterance_errors(d, data_dir, metric) for d in decodes_b]
    first = counts_a[0]
    for directory, counts in zip([*decodes_a, *decodes_b], [*counts_a, *counts_b]):
        if counts.ids != first.ids:
            raise ValueError(f"{directory}: decoded other utterances of {data_dir} than {decodes_a[0]}")
    return [c.errors for c in counts_a], [c.errors for c in counts_b], first.ref_units


@dataclasses.dataclass(frozen=True)
class BootstrapResult:
    """Difference ``a - b`` of (macro-averaged) corpus error rates in percentage points, its ``level`` confidence
    interval ``[low, high]`` (percentile bootstrap), and the fraction of resamples with ``a - b >= 0``."""

    difference: float
    low: float
    high: float
    level: float
    resamples: int
    p_not_better: float


def _as_seed_matrix(errors) -> np.ndarray:
    array = np.asarray(errors, dtype=np.float64)
    return array[None, :] if array.ndim == 1 else array


def paired_bootstrap(
    a: Mapping[str, Sequence] | Sequence,
    b: Mapping[str, Sequence] | Sequence,
    ref_units: Mapping[str, Sequence] | Sequence,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Paired bootstrap CI of error rate(a) - error rate(b), in percentage points.

    ``a``/``b``: per-utterance edit errors, as an array of shape ``(utterances,)`` or ``(seeds, utterances)``
    (the same utterances in the same order for both; seeds paired by row, or pooled: only the per-utterance sums
    matter), or a mapping language -> such an array. ``ref_units``: reference units per utterance (per language).
    Each resample draws utterance indices with replacement within each language, the same for ``a`` and ``b``;
    the statistic is the mean over languages of the corpus-level rate difference. Deterministic for a ``seed``.
    """
    if not isinstance(a, Mapping):
        a, b, ref_units = {"": a}, {"": b}, {"": ref_units}
    if set(a) != set(b) or set(a) != set(ref_units):
        raise ValueError(f"languages differ: {sorted(a)}, {sorted(b)}, {sorted(ref_units)}")
    if resamples < 1 or not 0 < level < 1:
        raise ValueError(f"need resamples >= 1 and 0 < level < 1, got {resamples}, {level}")
    rng = np.random.default_rng(seed)
    differences = np.zeros(resamples)
    point = 0.0
    for lang in sorted(a):
        errors_a, errors_b = _as_seed_matrix(a[lang]), _as_seed_matrix(b[lang])
        units = np.asarray(ref_units[lang], dtype=np.float64)
        if errors_a.shape[1] != units.size or errors_b.shape[1] != units.size:
            raise ValueError(f"{lang or 'data'}: {errors_a.shape[1]}/{errors_b.shape[1]} utterances of errors for "
                             f"{units.size} reference lengths")
        # each system's errors summed over its seeds, its reference units counted once per seed
        diff_per_utt = errors_a.sum(0) / errors_a.shape[0] - errors_b.sum(0) / errors_b.shape[0]
        if units.sum() <= 0:
            raise ValueError(f"{lang or 'data'}: no reference units")
        point += 100.0 * diff_per_utt.sum() / units.sum()
        indices = rng.integers(0, units.size, size=(resamples, units.size))
        differences += 100.0 * diff_per_utt[indices].sum(1) / units[indices].sum(1)
    point /= len(a)
    differences /= len(a)
    tail = (1.0 - level) / 2
    low, high = np.quantile(differences, [tail, 1.0 - tail])
    return BootstrapResult(float(point), float(low), float(high), level, resamples,
                           float(np.mean(differences >= 0)))


def format_interval(result: Mapping) -> str:
    """``+d.dd [+l.ll, +h.hh]`` of a :class:`BootstrapResult` (as a dict, ``vars(result)``), with ``*`` where the
    interval excludes 0."""
    mark = "*" if result["low"] > 0 or result["high"] < 0 else ""
    return f"{result['difference']:+.2f} [{result['low']:+.2f}, {result['high']:+.2f}]{mark}"
