"""Lightning DataModule over Kaldi data directories, with length-bucketed, DDP-sharded batches."""
from __future__ import annotations

from typing import Sequence

import lightning as L
import torch

from asrprune.data.dataset import CTCDataset, collate
from asrprune.data.feature_cache import FeatureCache
from asrprune.data.kaldi_dir import Utterance
from asrprune.data.sampler import BucketBatchSampler


def _worker_init(_: int) -> None:
    # One intra-op thread per loader worker: feature extraction must not steal the trainer's cores.
    torch.set_num_threads(1)


def same_language_across_ranks(data_config: dict) -> bool:
    """Whether the ranks' batches of one DDP step share one language: ``data.same_language_across_ranks``, by
    default (None or absent) on whenever batches are single-language (``data.single_language_batches``).

    Per-language masks need it: a step then averages one language's gradients over the ranks and trains that
    language's pathway only, the single-process update rule; without it a step mixes the ranks' languages and a
    weight in one pathway gets 1/R of its language's gradient.
    """
    option = data_config.get("same_language_across_ranks")
    return bool(data_config["single_language_batches"] if option is None else option)


class CTCDataModule(L.LightningDataModule):
    """Train and dev loaders.

    Args:
        train, dev: utterances; encode_targets: utterance -> target ids; languages: the model's language order.
        data_config: the ``data`` section of the training config (batching, speed perturbation, workers).
        feature_cache: where filterbanks are read from or extracted to.
    """

    def __init__(
        self,
        train: Sequence[Utterance],
        dev: Sequence[Utterance],
        encode_targets,
        languages: Sequence[str],
        data_config: dict,
        feature_cache: FeatureCache,
        seed: int = 0,
    ):
        super().__init__()
        self.config = data_config
        self.seed = seed
        self.train_set = CTCDataset(train, encode_targets, languages, data_config["speed_perturb"], feature_cache)
        self.dev_set = CTCDataset(dev, encode_targets, languages, feature_cache=feature_cache)

    def _loader(self, dataset: CTCDataset, training: bool) -> torch.utils.data.DataLoader:
        """Bucketed, rank-sharded loader: shuffled and in lockstep across ranks for training, disjoint shards for
        validation (pooled dev counts must not count a repeated batch twice)."""
        trainer = self.trainer
        world_size = trainer.world_size if trainer else 1
        single_language = self.config["single_language_batches"]
        sampler = BucketBatchSampler(
            dataset.durations(),
            dataset.languages(),
            max_batch_seconds=self.config["max_batch_seconds"],
            max_batch_size=self.config["max_batch_size"],
            # .get(): a key newer than some saved configs (None: the same budget as max_batch_seconds).
            max_padded_seconds=self.config.get("max_batch_padded_seconds"),
            single_language=single_language,
            shuffle=training,
            seed=self.seed,
            num_replicas=world_size,
            rank=trainer.global_rank if trainer else 0,
            even_shards=training,
            same_language_across_ranks=training and world_size > 1 and same_language_across_ranks(self.config),
        )
        workers = self.config["num_workers"]
        on_cuda = trainer is not None and trainer.strategy.root_device.type == "cuda"
        return torch.utils.data.DataLoader(
            dataset,
            batch_sampler=sampler,
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
