"""Length-bucketed batches, mixed-language or single-language, split across DDP ranks.

Written by hand because neither torch nor Lightning ships a batch sampler that bounds a batch by total audio
seconds, keeps batches language-pure on request, and shards whole batches across ranks (Lightning only injects a
DistributedSampler for plain samplers). The model needs language-pure batches when a pruning method applies one
mask per language.
"""
from __future__ import annotations

import math
import random
from typing import Iterator, Sequence


class BucketBatchSampler:
    """Yield lists of dataset indices whose durations are similar and sum to at most ``max_batch_seconds``.

    Args:
        durations: seconds per utterance (dataset order).
        languages: language code per utterance (dataset order).
        max_batch_seconds: audio seconds per batch (before padding); a longer single utterance forms its own batch.
        max_batch_size: utterances per batch at most.
        single_language: if True every batch holds one language only.
        shuffle: shuffle utterances inside length buckets and the order of batches, anew each epoch.
        num_replicas, rank: DDP world size and this process's rank; each rank gets the same number of batches.
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
    ):
        if len(durations) != len(languages):
            raise ValueError("durations and languages differ in length")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside 0..{num_replicas - 1}")
        self.durations = list(durations)
        self.languages = list(languages)
        self.max_batch_seconds = max_batch_seconds
        self.max_batch_size = max_batch_size
        self.single_language = single_language
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at each epoch so shuffling differs between epochs but agrees across ranks."""
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        groups = (
            [[i for i, lang in enumerate(self.languages) if lang == g] for g in sorted(set(self.languages))]
            if self.single_language
            else [list(range(len(self.durations)))]
        )
        batches: list[list[int]] = []
        for group in groups:
            # Sort by duration with a random tie-break so equal-length utterances mix across epochs.
            order = sorted(group, key=lambda i: (self.durations[i], rng.random() if self.shuffle else 0.0))
            batch: list[int] = []
            seconds = 0.0
            for i in order:
                full = len(batch) >= self.max_batch_size or seconds + self.durations[i] > self.max_batch_seconds
                if batch and full:
                    batches.append(batch)
                    batch, seconds = [], 0.0
                batch.append(i)
                seconds += self.durations[i]
            if batch:
                batches.append(batch)
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all_batches()
        per_rank = math.ceil(len(batches) / self.num_replicas)
        # Pad by repeating the first batches so every rank runs the same number of steps (DDP would hang otherwise).
        padded = batches + batches[: per_rank * self.num_replicas - len(batches)]
        return iter(padded[self.rank :: self.num_replicas])

    def __len__(self) -> int:
        return math.ceil(len(self._all_batches()) / self.num_replicas)
