"""Builders of a tiny two-language data set, model config and untrained model, shared by the tests (tests/conftest.py
builds the session's corpus and trained model from them) and benchmarks/gpu_smoke.py, benchmarks/fault_table.py."""
from __future__ import annotations

import random
from pathlib import Path

import lightning as L
import numpy as np
import torch

from asrprune.data.audio import write_wav
from asrprune.data.kaldi_dir import Utterance, write_data_dir
from asrprune.phonology.inventory import PhoneInventory
from asrprune.training.lightning_module import CTCModule

PHONES = {"de": ["a", "b", "d", "ʃ"], "fr": ["a", "b", "e", "ʁ"]}

TINY_OVERRIDES = [
    "model.encoder.output_size=32",
    "model.encoder.attention_heads=2",
    "model.encoder.linear_units=64",
    "model.encoder.num_blocks=1",
    "model.encoder.cnn_module_kernel=3",
    "data.num_workers=0",
    "data.max_batch_seconds=4",
    "data.cmvn_max_utterances=10",
    "trainer.accelerator=cpu",
    "trainer.val_check_interval=2",
    "trainer.log_every_n_steps=1",
]

TOKENS = ["<blank>", "<unk>"] + sorted({p for phones in PHONES.values() for p in phones})
TWO_BLOCK_ENCODER = {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 2,
                     "cnn_module_kernel": 3}


def make_tiny_data(root: Path, utts_per_split: int = 6) -> dict:
    """Write train/dev/test data dirs for de and fr (noise audio of 1-1.5 s, random phone strings) and phones.txt.

    Returns paths: ``train``, ``dev``, ``test`` (lists of dirs), ``tokens`` and ``lexicon`` per language.
    """
    rng = random.Random(0)
    noise = np.random.default_rng(0)
    paths: dict = {"train": [], "dev": [], "test": [], "lexicon": {}}
    for lang, phones in PHONES.items():
        words = {f"{lang}w{i}": tuple(rng.choice(phones) for _ in range(3)) for i in range(4)}
        lexicon = root / f"lang_{lang}" / "lexicon.txt"
        lexicon.parent.mkdir(parents=True, exist_ok=True)
        lexicon.write_text("".join(f"{w} {' '.join(p)}\n" for w, p in sorted(words.items())), encoding="utf-8")
        paths["lexicon"][lang] = lexicon
        for split in ("train", "dev", "test"):
            utts = []
            for i in range(utts_per_split):
                uttid = f"spk{lang}{split}-{i:03d}"
                seconds = 1.0 + 0.5 * rng.random()
                wav = root / f"{split}_{lang}" / "wav" / f"{uttid}.wav"
                write_wav(wav, 0.1 * noise.standard_normal(int(16000 * seconds)).astype(np.float32))
                sentence = [rng.choice(sorted(words)) for _ in range(2)]
                utts.append(
                    Utterance(
                        uttid,
                        str(wav),
                        " ".join(sentence),
                        f"spk{lang}{split}",
                        lang,
                        seconds,
                        tuple(p for w in sentence for p in words[w]),
                    )
                )
            write_data_dir(root / f"{split}_{lang}", utts)
            paths[split].append(root / f"{split}_{lang}")
    paths["tokens"] = root / "phones.txt"
    PhoneInventory.from_phones(p for phones in PHONES.values() for p in phones).save(paths["tokens"])
    return paths


class InterruptAtStep(L.Callback):
    """Simulates Ctrl-C before training step ``step`` (Lightning stops without saving more and exits)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


def two_block_module(seed: int = 0) -> CTCModule:
    """An untrained two-block tiny model over :data:`TOKENS` (random weights from ``seed``, non-trivial BatchNorm
    statistics so that folding them is exercised), in eval mode: what the AutoDFP tests prune."""
    torch.manual_seed(seed)
    module = CTCModule(TOKENS, PHONES, {"num_mel_bins": 80, "encoder": TWO_BLOCK_ENCODER},
                       {"lr": 1e-3, "weight_decay": 0, "warmup_fraction": 0.1}, max_steps=10)
    for bn in module.modules():
        if isinstance(bn, torch.nn.BatchNorm1d):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    return module.eval()
