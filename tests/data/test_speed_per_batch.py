"""data.speed_perturb_per: one speed-perturbation factor per batch or per utterance (asrprune.data.dataset)."""
from __future__ import annotations

import random

import pytest
import torch

from asrprune.data.dataset import CTCDataset
from asrprune.data.kaldi_dir import Utterance
from asrprune.training.config import load_config
from asrprune.training.datamodule import SeededBatches


class FactorCache:
    """Stands in for the feature cache: an utterance's 'features' are 10 frames per second of audio after
    perturbation (so lengths follow the factor as real filterbanks do), every value the factor itself."""

    def features(self, utt: Utterance, factor: float) -> torch.Tensor:
        return torch.full((round(10 * utt.duration / factor), 2), factor)


def dataset(speed_per: str) -> CTCDataset:
    utts = [Utterance(f"u{i}", "-", "a", "s", "de", 3.0, ("a",)) for i in range(12)]
    return CTCDataset(utts, None, ["de"], (0.9, 1.0, 1.1), FactorCache(), speed_per=speed_per)


def factors(items: list[dict]) -> set[float]:
    return {round(float(item["feats"][0, 0]), 3) for item in items}


def test_a_batch_shares_one_factor_and_keeps_equal_lengths_equal():
    reader = SeededBatches(dataset("batch"), seed=0)
    batches = [reader.__getitems__(list(range(start, start + 4))) for start in (0, 4, 8)] * 3
    assert all(len(factors(batch)) == 1 for batch in batches)
    assert all(len({len(item["feats"]) for item in batch}) == 1 for batch in batches)  # no padding between them


def test_per_utterance_factors_differ_within_a_batch_and_both_are_seeded_by_the_batch():
    for speed_per in ("utterance", "batch"):
        reader = SeededBatches(dataset(speed_per), seed=0)
        first = reader.__getitems__(list(range(12)))
        random.random()  # what the training process drew in between does not matter
        again = reader.__getitems__(list(range(12)))
        assert [float(i["feats"][0, 0]) for i in first] == [float(i["feats"][0, 0]) for i in again]
        assert len(factors(first)) == (1 if speed_per == "batch" else 3)


def test_the_setting_is_checked_and_defaults_to_batch():
    assert load_config(None, [])["data"]["speed_perturb_per"] == "batch"
    with pytest.raises(ValueError, match=r"data\.speed_perturb_per: 'epoch'"):
        dataset("epoch")
