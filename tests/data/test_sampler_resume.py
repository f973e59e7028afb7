"""Resuming mid-epoch: the batch sampler and the training loader continue an epoch with exactly the batches, and the
same random augmentation, that the uninterrupted epoch has after the same point, with or without loader workers."""
from __future__ import annotations

import pickle
import random

import pytest
import torch
from lightning.fabric.utilities.types import _Stateful

from asrprune.data.sampler import BucketBatchSampler, EpochBatch
from asrprune.training.datamodule import ResumableDataLoader, SeededBatches

LANGS = ["de"] * 23 + ["fr"] * 11 + ["it"] * 5
DURATIONS = [1.0 + (i * 7 % 5) * 0.3 for i in range(len(LANGS))]


def sampler(**options) -> BucketBatchSampler:
    return BucketBatchSampler(DURATIONS, LANGS, 4, **options)


@pytest.mark.parametrize("options", [{}, {"single_language": True},
                                     {"single_language": True, "num_replicas": 3, "rank": 1,
                                      "same_language_across_ranks": True},
                                     {"num_replicas": 2, "rank": 1}])
def test_sampler_resumed_at_batch_k_of_epoch_e_yields_the_rest_of_that_epoch(options):
    for epoch in (0, 3):
        whole = sampler(**options)
        whole.set_epoch(epoch)
        batches = list(whole)
        assert len(batches) > 2
        next_epoch = sampler(**options)
        next_epoch.set_epoch(epoch + 1)
        for k in range(len(batches) + 1):
            resumed = sampler(**options)  # a new process: nothing but the resume position carries over
            resumed.resume(epoch, k)
            assert len(resumed) == len(batches)  # Lightning counts the whole epoch's batches
            rest = list(resumed)
            assert rest == batches[k:] and all(batch.epoch == epoch for batch in rest)
            assert list(resumed) == rest  # until the epoch changes
            resumed.sampler.set_epoch(epoch + 1)  # what Lightning calls
            assert list(resumed) == list(next_epoch)
    with pytest.raises(ValueError):
        sampler().resume(0, -1)


def test_batches_name_their_epoch_also_in_a_worker():
    batch = pickle.loads(pickle.dumps(EpochBatch([3, 1, 2], 7)))
    assert batch == [3, 1, 2] and batch.epoch == 7


class Perturbed(torch.utils.data.Dataset):
    """Draws from Python's ``random`` per item, as CTCDataset draws the speed-perturbation factor."""

    def __len__(self) -> int:
        return len(LANGS)

    def __getitem__(self, index: int) -> tuple[int, float]:
        return index, random.random()


def loader(workers: int) -> ResumableDataLoader:
    return ResumableDataLoader(SeededBatches(Perturbed(), seed=5), batch_sampler=sampler(single_language=True),
                               collate_fn=list, num_workers=workers, persistent_workers=workers > 0,
                               generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_resumed_mid_epoch_yields_the_rest_with_the_same_augmentation(workers):
    """Lightning's protocol: ``state_dict()`` at a checkpoint, and on resume ``load_state_dict`` before the loader
    is iterated (and before ``set_epoch``). With workers, those have read batches ahead of the main process;
    only what the main process took counts."""
    reference = loader(0)
    epochs = []
    for epoch in range(3):
        reference.batch_sampler.sampler.set_epoch(epoch)  # what Lightning calls
        epochs.append(list(reference))
    assert epochs[0] != epochs[1]

    killed = loader(workers)
    assert isinstance(killed, _Stateful)  # what Lightning looks for to save and restore a loader's position
    assert killed.state_dict() == {"epoch": 0, "batches": 0}
    killed.batch_sampler.sampler.set_epoch(1)
    iterator = iter(killed)
    taken = [next(iterator) for _ in range(3)]
    assert taken == epochs[1][:3]
    state = killed.state_dict()
    assert state == {"epoch": 1, "batches": 3}
    del iterator, killed

    resumed = loader(workers)
    resumed.load_state_dict(state)
    assert list(resumed) == epochs[1][3:]
    assert resumed.state_dict() == {"epoch": 2, "batches": 0}  # at the end of an epoch: the next one's start
    resumed.batch_sampler.sampler.set_epoch(2)
    assert list(resumed) == epochs[2]


def test_reading_a_batch_leaves_the_callers_random_state_alone():
    dataset = SeededBatches(Perturbed(), seed=0)
    random.seed(1)
    expected = random.random()
    random.seed(1)
    first = dataset.__getitems__(EpochBatch([0, 1], 0))
    assert random.random() == expected
    assert dataset.__getitems__(EpochBatch([0, 1], 0)) == first != dataset.__getitems__(EpochBatch([0, 1], 1))
