"""The bucketing sampler (asrprune.data.sampler): batch bounds, single-language batches, rank shards, and the
reshuffle every epoch through Lightning."""
from __future__ import annotations

import math
from collections import defaultdict

import lightning as L
import pytest

from asrprune.data.feature_cache import FeatureCache
from asrprune.data.features import FbankConfig
from asrprune.data.sampler import BucketBatchSampler
from asrprune.data.targets import load_target_units
from asrprune.training.config import load_config
from asrprune.training.datamodule import CTCDataModule
from asrprune.training.lightning_module import CTCModule
from asrprune.training.train import language_tokens, read_data_dirs
from tests.helpers.tiny_experiment import TINY_OVERRIDES


def test_sampler_bounds_batches_and_covers_every_utterance():
    durations = [1.0 + (i % 7) for i in range(50)]
    langs = ["de" if i % 3 else "fr" for i in range(50)]
    sampler = BucketBatchSampler(durations, langs, max_batch_seconds=12, max_batch_size=5)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(50))
    for batch in batches:
        assert len(batch) <= 5
        assert len(batch) == 1 or sum(durations[i] for i in batch) <= 12
    assert len(sampler) == len(batches)


def test_single_language_batches_are_pure():
    langs = ["de", "fr", "it"] * 20
    sampler = BucketBatchSampler([2.0] * 60, langs, max_batch_seconds=10, single_language=True)
    for batch in sampler:
        assert len({langs[i] for i in batch}) == 1


def test_ranks_get_disjoint_equal_shards():
    durations = [1.0 + (i % 5) * 0.5 for i in range(41)]
    langs = ["de"] * 41
    shards = [list(BucketBatchSampler(durations, langs, 6, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == math.ceil(len(list(BucketBatchSampler(durations, langs, 6))) / 2)
    covered = {i for shard in shards for b in shard for i in b}
    assert covered == set(range(41))
    # Validation shards: disjoint, nothing repeated (pooled dev counts count every utterance once).
    dev = [list(BucketBatchSampler(durations, langs, 6, shuffle=False, num_replicas=3, rank=r, even_shards=False))
           for r in range(3)]
    flat = sorted(i for shard in dev for b in shard for i in b)
    assert flat == list(range(41))
    with pytest.raises(ValueError, match="ranks"):
        list(BucketBatchSampler([1.0] * 2, ["de"] * 2, 6, num_replicas=3, rank=0, even_shards=False))


def test_padded_length_bounds_batches():
    """One long clip among short ones: the sum bound alone would batch it with many short clips (memory follows the
    padded length); the padded bound keeps longest x size within budget."""
    durations = [2.0] * 30 + [60.0]
    sampler = BucketBatchSampler(durations, ["de"] * 31, max_batch_seconds=120, max_batch_size=64, shuffle=False)
    long_batch = next(b for b in sampler if 30 in b)
    assert len(long_batch) * 60.0 <= 120
    for batch in sampler:
        assert len(batch) == 1 or max(durations[i] for i in batch) * len(batch) <= 120
    loose = BucketBatchSampler(durations, ["de"] * 31, 120, 64, shuffle=False, max_padded_seconds=10_000)
    assert len(next(b for b in loose if 30 in b)) > 2


def test_ranks_share_the_language_of_each_step():
    """same_language_across_ranks: at every step the three ranks hold batches of one language; every utterance
    is covered; languages with unequal batch counts are padded with their own batches."""
    langs = ["de"] * 23 + ["fr"] * 11 + ["it"] * 5
    durations = [1.0 + (i % 4) * 0.5 for i in range(len(langs))]

    def shard(rank):
        return list(BucketBatchSampler(durations, langs, 4, single_language=True, num_replicas=3, rank=rank,
                                       same_language_across_ranks=True))

    shards = [shard(r) for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    for step in zip(*shards):
        assert len({langs[i] for batch in step for i in batch}) == 1
    assert {i for s in shards for b in s for i in b} == set(range(len(langs)))
    with pytest.raises(ValueError, match="single_language"):
        BucketBatchSampler(durations, langs, 4, same_language_across_ranks=True)


class RecordBatches(L.Callback):
    """The utterance ids of every training batch, per epoch."""

    def __init__(self):
        self.epochs: dict[int, list[tuple[str, ...]]] = defaultdict(list)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.epochs[trainer.current_epoch].append(tuple(batch.uttids))


def test_lightning_fit_reshuffles_every_epoch(tiny_data):
    """Through a real Trainer.fit (Lightning calls set_epoch on ``batch_sampler.sampler``, not the batch sampler):
    each epoch covers every utterance once, in a different batch order."""
    config = load_config(None, TINY_OVERRIDES + ["data.speed_perturb=[1.0]"])
    units = load_target_units(tiny_data["tokens"])
    train_utts = read_data_dirs(tiny_data["train"])
    module = CTCModule(units.tokens, language_tokens(train_utts, units), config["model"], config["optim"], 100)
    datamodule = CTCDataModule(train_utts, read_data_dirs(tiny_data["dev"]), units.encode, module.model,
                               config["data"], FeatureCache(None, FbankConfig(80)))
    recorder = RecordBatches()
    trainer = L.Trainer(max_epochs=3, limit_val_batches=0, accelerator="cpu", logger=False, callbacks=[recorder],
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        use_distributed_sampler=False)
    trainer.fit(module, datamodule=datamodule)
    orders = [recorder.epochs[epoch] for epoch in range(3)]
    for order in orders:
        assert sorted(u for batch in order for u in batch) == sorted(u.uttid for u in train_utts)
    assert orders[0] != orders[1] and orders[1] != orders[2] and orders[0] != orders[2]
