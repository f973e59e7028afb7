"""Lightning DataModule over Kaldi data directories, with length-bucketed, DDP-sharded batches.

A run resumed from a checkpoint taken mid-epoch trains on exactly the batches, with exactly the speed perturbation,
that the uninterrupted run would have: the training loader is a :class:`ResumableDataLoader` (Lightning saves its
position in the epoch in every checkpoint and hands it back on resume), the batch's random augmentation is seeded by
the batch itself (:class:`SeededBatches`), and no loader draws from the global torch generator that dropout uses
(each has its own ``generator``). The random generators themselves are restored by
:class:`asrprune.training.checkpoints.RandomStates`.
"""
from __future__ import annotations

import random
from typing import Iterator, Sequence

import lightning as L
import torch

from asrprune.data.dataset import CTCDataset, collate
from asrprune.data.feature_cache import FeatureCache
from asrprune.data.kaldi_dir import Utterance
from asrprune.data.sampler import BucketBatchSampler, EpochBatch
from asrprune.model.conformer_ctc import ConformerCTC


def _worker_init(_: int) -> None:
    # One intra-op thread per loader worker: feature extraction must not steal the trainer's cores.
    torch.set_num_threads(1)


class SeededBatches(torch.utils.data.Dataset):
    """``dataset`` read a batch at a time (the loader calls ``__getitems__`` with the batch sampler's
    :class:`~asrprune.data.sampler.EpochBatch`), with Python's ``random`` seeded from (``seed``, the batch's epoch,
    its indices) while the batch's items are read, and restored afterwards.

    :class:`~asrprune.data.dataset.CTCDataset` draws the speed-perturbation factor of each item, or of the whole
    batch (``data.speed_perturb_per``), with ``random.choice``. Seeded this way the draw depends on the batch only:
    not on which loader worker reads it nor on what that worker (or, with ``num_workers: 0``, the training process)
    drew before, so a run resumed mid-epoch perturbs its batches as the uninterrupted run did, and reading the dev
    set leaves the training process's ``random`` as it was. Every item is still perturbed with a factor drawn
    uniformly, anew each epoch.
    """

    def __init__(self, dataset: torch.utils.data.Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return self.dataset[index]

    def __getitems__(self, batch: list[int]) -> list:
        state = random.getstate()
        random.seed(f"{self.seed}:{getattr(batch, 'epoch', 0)}:{','.join(map(str, batch))}")
        try:
            read_batch = getattr(self.dataset, "__getitems__", None)
            return read_batch(batch) if read_batch else [self.dataset[i] for i in batch]
        finally:
            random.setstate(state)


class ResumableDataLoader(torch.utils.data.DataLoader):
    """A training loader over a :class:`~asrprune.data.sampler.BucketBatchSampler` that continues an epoch where a
    checkpoint left it.

    Lightning's mechanism for resumable loaders: a training loader with ``state_dict``/``load_state_dict`` has its
    state saved in every checkpoint (``_FitLoop.on_save_checkpoint``, key ``loops.fit_loop.state_dict.
    combined_loader``), and on resume ``load_state_dict`` is called before the loader is iterated
    (``_FitLoop.setup_data``); the epoch loop then counts on from the restored ``batch_progress``, so the loader
    must yield the epoch's remaining batches only. The state is the epoch and the number of batches this (main)
    process has taken from the loader in it: workers may have read batches ahead, but no step trained on those.
    Lightning does not prefetch from a loader that has a length (``_PrefetchDataFetcher.__iter__``), so the count
    is the epoch's number of steps. A state at an epoch's last batch points at the start of the next epoch.

    Restoring the epoch here also matters on its own: Lightning iterates the loader before it calls ``set_epoch``
    for the resumed epoch, which would otherwise be shuffled as epoch 0.
    """

    def __iter__(self) -> Iterator:
        iterator = super().__iter__()  # iterates the batch sampler, which starts at its first_batch()
        self._position = [self.batch_sampler.epoch, self.batch_sampler.first_batch()]
        return self._counted(iterator)

    def _counted(self, iterator) -> Iterator:
        for batch in iterator:
            self._position[1] += 1
            yield batch

    def state_dict(self) -> dict:
        epoch, batches = getattr(self, "_position", (self.batch_sampler.epoch, 0))
        if batches >= len(self.batch_sampler):
            epoch, batches = epoch + 1, 0
        return {"epoch": epoch, "batches": batches}

    def load_state_dict(self, state: dict) -> None:
        self.batch_sampler.resume(state["epoch"], state["batches"])


class CTCDataModule(L.LightningDataModule):
    """Train and dev loaders (the train loader resumable mid-epoch, :class:`ResumableDataLoader`) for ``model``.

    The model decides what its batches must be: its :attr:`~asrprune.model.conformer_ctc.ConformerCTC.languages`
    fix the language ids, and a model with per-language masks
    (:attr:`~asrprune.model.conformer_ctc.ConformerCTC.needs_single_language_batches`) gets single-language batches
    whatever ``data.single_language_batches`` says (that option gives them to other models too). With
    single-language batches the ranks of one DDP step share the language: a step then averages one language's
    gradients over the ranks and trains that language's pathway only, the single-process update rule (mixed, a
    weight in one pathway would get 1/R of its language's gradient).

    Args:
        train, dev: utterances; encode_targets: utterance -> target ids; model: the ConformerCTC to be trained.
        data_config: the ``data`` section of the training config (batching, speed perturbation, workers).
        feature_cache: where filterbanks are read from or extracted to.
    """

    def __init__(
        self,
        train: Sequence[Utterance],
        dev: Sequence[Utterance],
        encode_targets,
        model: ConformerCTC,
        data_config: dict,
        feature_cache: FeatureCache,
        seed: int = 0,
    ):
        super().__init__()
        self.config = data_config
        self.seed = seed
        self.single_language = data_config["single_language_batches"] or model.needs_single_language_batches
        languages = model.languages
        self.train_set = CTCDataset(train, encode_targets, languages, data_config["speed_perturb"], feature_cache,
                                    speed_per=data_config["speed_perturb_per"])
        self.dev_set = CTCDataset(dev, encode_targets, languages, feature_cache=feature_cache)

    def _loader(self, dataset: CTCDataset, training: bool) -> torch.utils.data.DataLoader:
        """Bucketed, rank-sharded loader: shuffled and in lockstep across ranks for training, disjoint shards for
        validation (pooled dev counts must not count a repeated batch twice)."""
        trainer = self.trainer
        world_size = trainer.world_size if trainer else 1
        sampler = BucketBatchSampler(
            dataset.durations(),
            dataset.languages(),
            max_batch_seconds=self.config["max_batch_seconds"],
            max_batch_size=self.config["max_batch_size"],
            # .get(): a key newer than some saved configs (None: the same budget as max_batch_seconds).
            max_padded_seconds=self.config.get("max_batch_padded_seconds"),
            single_language=self.single_language,
            shuffle=training,
            seed=self.seed,
            num_replicas=world_size,
            rank=trainer.global_rank if trainer else 0,
            even_shards=training,
            same_language_across_ranks=training and world_size > 1 and self.single_language,
        )
        workers = self.config["num_workers"]
        on_cuda = trainer is not None and trainer.strategy.root_device.type == "cuda"
        loader = ResumableDataLoader if training else torch.utils.data.DataLoader
        return loader(
            SeededBatches(dataset, self.seed),
            batch_sampler=sampler,
            # Each new iterator draws its workers' base seed from this generator, not from the global one, whose
            # state (dropout's) must not depend on how often a loader was iterated (validations, a resume).
            generator=torch.Generator().manual_seed(self.seed),
            collate_fn=collate,
            num_workers=workers,
            worker_init_fn=_worker_init if workers else None,
            persistent_workers=workers > 0,
            pin_memory=on_cuda,  # page-locked batches let Batch.to copy to the GPU asynchronously
        )

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.train_set, training=True)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.dev_set, training=False)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return batch.to(device)
