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

    def _loader(self, dataset: CTCDataset, shuffle: bool) -> torch.utils.data.DataLoader:
        trainer = self.trainer
        sampler = BucketBatchSampler(
            dataset.durations(),
            dataset.languages(),
            max_batch_seconds=self.config["max_batch_seconds"],
            max_batch_size=self.config["max_batch_size"],
            single_language=self.config["single_language_batches"],
            shuffle=shuffle,
            seed=self.seed,
            num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
        )
        workers = self.config["num_workers"]
        return torch.utils.data.DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=workers,
            worker_init_fn=_worker_init if workers else None,
            persistent_workers=workers > 0,
        )

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.dev_set, shuffle=False)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return batch.to(device)
