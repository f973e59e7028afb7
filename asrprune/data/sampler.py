"""Length-bucketed batches, mixed-language or single-language, split across DDP ranks.

Written by hand because neither torch nor Lightning ships a batch sampler that bounds a batch by audio seconds
(summed and padded), keeps batches language-pure on request, gives every rank the same language in the same step,
and shards whole batches across ranks (Lightning only injects a DistributedSampler for plain samplers).
The model needs language-pure batches when a pruning method applies one mask per language.

A batch is an :class:`EpochBatch`: the list of indices, which also names its epoch. ``resume(epoch, batches)`` makes
the iterations over that epoch continue after its first ``batches`` batches (a run resumed mid-epoch from a
checkpoint, :class:`asrprune.training.datamodule.ResumableDataLoader`).
"""
from __future__ import annotations

import math
import random
from typing import Iterator, Sequence


class EpochCounter:
    """The epoch a :class:`BucketBatchSampler` shuffles for, exposed as the batch sampler's ``.sampler``.

    Lightning 2.6 calls ``set_epoch`` on ``dataloader.sampler`` and on ``dataloader.batch_sampler.sampler``
    (``lightning.fabric.utilities.data._set_sampler_epoch``), never on the batch sampler itself, so this object is
    what it finds and updates at the start of every training epoch (including the resumed epoch after a restart).
    """

    def __init__(self) -> None:
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class EpochBatch(list):
    """A batch of dataset indices (a plain ``list`` to every reader) that also names the ``epoch`` it belongs to,
    so that whoever loads it (a loader worker too: it is pickled with its epoch) can seed the batch's random
    augmentation from (epoch, indices) alone (:class:`asrprune.training.datamodule.SeededBatches`)."""

    __slots__ = ("epoch",)

    def __init__(self, indices, epoch: int):
        super().__init__(indices)
        self.epoch = epoch


class BucketBatchSampler:
    """Yield lists of dataset indices whose durations are similar, within the batch bounds.

    Args:
        durations: seconds per utterance (dataset order).
        languages: language code per utterance (dataset order).
        max_batch_seconds: audio seconds per batch before padding (sum of durations).
        max_batch_size: utterances per batch at most.
        max_padded_seconds: audio seconds per batch after padding (longest duration x utterances), which is what
            the model's memory follows; None: equal to ``max_batch_seconds``. A single utterance longer than a bound
            forms its own batch.
        single_language: if True every batch holds one language only.
        shuffle: shuffle utterances inside length buckets and the order of batches, anew each epoch.
        num_replicas, rank: DDP world size and this process's rank.
        even_shards: every rank gets the same number of batches, the last ones repeated from the first (training:
            DDP steps in lockstep); False: disjoint shards that may differ by one batch (validation, so that no
            utterance is counted twice), each rank needing at least one batch.
        same_language_across_ranks: with ``single_language``, the ranks' batches of one step share a language
            (each language's batches are padded to a multiple of ``num_replicas`` with its own first batches), so
            under DDP a step averages gradients of one language only, as a single process would.

    ``set_epoch`` (or ``sampler.set_epoch``, what Lightning calls) changes the shuffle; all ranks agree on it.
    ``resume(epoch, batches)`` skips the first ``batches`` batches of ``epoch`` until the epoch changes; ``len`` is
    always the whole epoch's.
    """

    def __init__(
        self,
        durations: Sequence[float],
        languages: Sequence[str],
        max_batch_seconds: float,
        max_batch_size: int = 64,
        single_language: bool = False,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        max_padded_seconds: float | None = None,
        even_shards: bool = True,
        same_language_across_ranks: bool = False,
    ):
        if len(durations) != len(languages):
            raise ValueError("durations and languages differ in length")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside 0..{num_replicas - 1}")
        if same_language_across_ranks and not single_language:
            raise ValueError("same_language_across_ranks needs single_language batches (data.single_language_batches)")
        self.durations = list(durations)
        self.languages = list(languages)
        self.max_batch_seconds = max_batch_seconds
        self.max_padded_seconds = max_batch_seconds if max_padded_seconds is None else max_padded_seconds
        self.max_batch_size = max_batch_size
        self.single_language = single_language
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.even_shards = even_shards
        self.same_language_across_ranks = same_language_across_ranks
        self.sampler = EpochCounter()
        self._resumed: tuple[int, int] | None = None  # (epoch, batches skipped), see resume

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        """Shuffle for ``epoch`` (Lightning reaches the same counter through ``.sampler``)."""
        self.sampler.set_epoch(epoch)

    def resume(self, epoch: int, batches: int) -> None:
        """Continue ``epoch`` after its first ``batches`` batches: iterations yield the rest of that epoch's
        batches, exactly those an uninterrupted iteration yields after them (the shuffle depends on seed and epoch
        only), until the epoch is set to another one. (Every iteration, not only the next: a loader with workers
        iterates its batch sampler twice when it starts.)"""
        if batches < 0:
            raise ValueError(f"cannot resume after {batches} batches")
        self.set_epoch(epoch)
        self._resumed = (epoch, batches)

    def first_batch(self) -> int:
        """Where iterations over the current epoch start: 0, or the position it was resumed at."""
        if self._resumed is not None and self._resumed[0] != self.epoch:
            self._resumed = None  # the resumed epoch is over
        return self._resumed[1] if self._resumed is not None else 0

    def _bucket(self, group: list[int], rng: random.Random) -> list[list[int]]:
        """Cut ``group`` (indices), sorted by duration, into consecutive batches within the bounds."""
        # Sort by duration with a random tie-break so equal-length utterances mix across epochs.
        order = sorted(group, key=lambda i: (self.durations[i], rng.random() if self.shuffle else 0.0))
        batches: list[list[int]] = []
        batch: list[int] = []
        seconds = 0.0
        for i in order:
            # order is ascending, so utterance i is the longest of the batch it joins.
            padded = self.durations[i] * (len(batch) + 1)
            full = (
                len(batch) >= self.max_batch_size
                or seconds + self.durations[i] > self.max_batch_seconds
                or padded > self.max_padded_seconds
            )
            if batch and full:
                batches.append(batch)
                batch, seconds = [], 0.0
            batch.append(i)
            seconds += self.durations[i]
        if batch:
            batches.append(batch)
        return batches

    def _steps(self) -> list[list[list[int]]]:
        """The epoch's batches in groups that must stay consecutive (one batch per rank per group when languages
        are aligned across ranks, else single batches), shuffled."""
        rng = random.Random(self.seed + self.epoch)
        if self.single_language:
            groups = [[i for i, lang in enumerate(self.languages) if lang == g] for g in sorted(set(self.languages))]
        else:
            groups = [list(range(len(self.durations)))]
        bucketed = [self._bucket(group, rng) for group in groups]
        if self.same_language_across_ranks:
            units = []
            for batches in bucketed:
                padded = _repeat_to_multiple(batches, self.num_replicas)
                units += [padded[i : i + self.num_replicas] for i in range(0, len(padded), self.num_replicas)]
        else:
            units = [[batch] for batches in bucketed for batch in batches]
        if self.shuffle:
            rng.shuffle(units)
        return units

    def _shard(self) -> list[list[int]]:
        """This rank's batches for the current epoch."""
        batches = [batch for unit in self._steps() for batch in unit]
        if self.even_shards:
            # Repeat the first batches so every rank runs the same number of steps (DDP would hang otherwise).
            batches = _repeat_to_multiple(batches, self.num_replicas)
        elif len(batches) < self.num_replicas:
            raise ValueError(
                f"{len(batches)} batches cannot give each of {self.num_replicas} ranks one: lower "
                "data.max_batch_seconds or use more data"
            )
        return batches[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[EpochBatch]:
        epoch, start = self.epoch, self.first_batch()
        return iter([EpochBatch(batch, epoch) for batch in self._shard()[start:]])

    def __len__(self) -> int:
        return len(self._shard())


def _repeat_to_multiple(batches: list[list[int]], multiple: int) -> list[list[int]]:
    """``batches`` followed by its first batches, up to a length divisible by ``multiple``."""
    missing = -len(batches) % multiple
    return batches + (batches * math.ceil(missing / max(len(batches), 1)))[:missing]
