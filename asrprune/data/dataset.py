"""A torch Dataset over Kaldi data directories: 16 kHz audio in, fbank features and CTC target ids out."""
from __future__ import annotations

import dataclasses
import random
from typing import Sequence

import torch

from asrprune.data.feature_cache import FeatureCache
from asrprune.data.kaldi_dir import Utterance


@dataclasses.dataclass
class Batch:
    """A padded batch.

    feats: float (B, T, F) filterbanks; feat_lengths: long (B,) frames; targets: long (B, L) token ids padded
    with -1; target_lengths: long (B,); lang_ids: long (B,) index into the model's language list.
    """

    uttids: list[str]
    feats: torch.Tensor
    feat_lengths: torch.Tensor
    targets: torch.Tensor
    target_lengths: torch.Tensor
    lang_ids: torch.Tensor

    def _map(self, fn) -> "Batch":
        """The batch with ``fn`` applied to every tensor."""
        return dataclasses.replace(
            self,
            **{f.name: fn(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "uttids"},
        )

    def pin_memory(self) -> "Batch":
        """Page-locked copy; ``DataLoader(pin_memory=True)`` calls this (it pins custom batches through it)."""
        return self._map(torch.Tensor.pin_memory)

    def to(self, device: torch.device | str) -> "Batch":
        """The batch on ``device``; the copies are asynchronous from pinned memory (the training loader pins on
        CUDA), so the host does not wait for them."""
        return self._map(lambda tensor: tensor.to(device, non_blocking=True))


class CTCDataset(torch.utils.data.Dataset):
    """Utterances with their CTC targets (phones or subword pieces).

    Args:
        utterances: from :func:`asrprune.data.kaldi_dir.read_data_dir`.
        encode_targets: maps an utterance to its target token ids (``TargetUnits.encode``); None for inference
            (every target is then empty).
        languages: the model's language list; an utterance's language must be in it.
        speed_factors: speed perturbation factors, drawn uniformly with Python's ``random`` (``(1.0,)`` disables it).
        feature_cache: where filterbanks are cached (default: extracted every time, nothing stored).
        speed_per: ``"utterance"``: each item draws its own factor; ``"batch"``: a batch read with
            :meth:`__getitems__` draws one factor for all its items. The batch sampler groups utterances of similar
            duration, and per-utterance factors (0.9-1.1) spread their lengths again by up to 20 %, so padding
            took 8.9 % of the mini recipe's training frames (``benchmarks/train_step_profile.py profile``); with one
            factor per batch the lengths keep the sampler's order. Each utterance still sees every factor with equal
            probability over the epochs.
    """

    SPEED_PER = ("batch", "utterance")

    def __init__(
        self,
        utterances: Sequence[Utterance],
        encode_targets,
        languages: Sequence[str],
        speed_factors: Sequence[float] = (1.0,),
        feature_cache: FeatureCache | None = None,
        speed_per: str = "utterance",
    ):
        if speed_per not in self.SPEED_PER:
            raise ValueError(f"data.speed_perturb_per: {speed_per!r}, choose one of {self.SPEED_PER}")
        unknown = sorted({u.lang for u in utterances} - set(languages))
        if unknown:
            raise ValueError(f"data has languages {unknown} that the model does not know (it knows {list(languages)})")
        self.utterances = list(utterances)
        self.targets = [
            torch.tensor(encode_targets(u) if encode_targets else [], dtype=torch.long) for u in self.utterances
        ]
        self.lang_index = {lang: i for i, lang in enumerate(languages)}
        self.speed_factors = tuple(speed_factors)
        self.speed_per = speed_per
        self.feature_cache = feature_cache or FeatureCache(None)

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> dict:
        return self._item(index, random.choice(self.speed_factors))

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        """The items of one batch (what a DataLoader with a batch sampler calls), speed-perturbed per ``speed_per``."""
        if self.speed_per == "utterance":
            return [self[i] for i in indices]
        factor = random.choice(self.speed_factors)
        return [self._item(i, factor) for i in indices]

    def _item(self, index: int, speed_factor: float) -> dict:
        utt = self.utterances[index]
        return {
            "uttid": utt.uttid,
            "feats": self.feature_cache.features(utt, speed_factor),
            "targets": self.targets[index],
            "lang_id": self.lang_index[utt.lang],
        }

    def durations(self) -> list[float]:
        """Duration of each utterance in seconds, in dataset order."""
        return [u.duration for u in self.utterances]

    def languages(self) -> list[str]:
        return [u.lang for u in self.utterances]


def collate(items: list[dict]) -> Batch:
    """Pad a list of dataset items into a :class:`Batch`."""
    feats = torch.nn.utils.rnn.pad_sequence([it["feats"] for it in items], batch_first=True)
    targets = torch.nn.utils.rnn.pad_sequence([it["targets"] for it in items], batch_first=True, padding_value=-1)
    return Batch(
        uttids=[it["uttid"] for it in items],
        feats=feats,
        feat_lengths=torch.tensor([it["feats"].shape[0] for it in items], dtype=torch.long),
        targets=targets,
        target_lengths=torch.tensor([len(it["targets"]) for it in items], dtype=torch.long),
        lang_ids=torch.tensor([it["lang_id"] for it in items], dtype=torch.long),
    )
