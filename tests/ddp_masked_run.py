"""Two-process (gloo) adaptive-masking run of a masked model, launched by tests/test_ddp.py.

Lightning's DDP launcher starts this script again for rank 1. Both processes train ``--stop`` of ``--steps`` steps
(the LR and mask schedules run to ``--steps``), save ``<out>/last.ckpt`` and then resume from it with a new module,
callbacks and trainer (the launched processes and their process group are reused: Lightning does not launch
again once ``LOCAL_RANK`` is set), validating at the end of each part. For each part every rank writes
``<out>/<part>_rank<r>.pt`` (part ``first`` or ``resumed``): its state_dict, the criterion's state, the mask
history, the languages of each of its training batches and the validation metrics it logged.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import lightning as L
import torch

from asrprune.data.feature_cache import FeatureCache
from asrprune.data.features import FbankConfig
from asrprune.data.kaldi_dir import read_data_dir
from asrprune.data.targets import load_target_units
from asrprune.pruning.masking.callbacks import AdaptiveMasking
from asrprune.pruning.masking.criteria import build_criterion
from asrprune.pruning.masking.schedule import SparsitySchedule
from asrprune.training.config import load_config
from asrprune.training.datamodule import CTCDataModule
from asrprune.training.lightning_module import CTCModule, ddp_strategy_for
from tiny_experiment import TINY_OVERRIDES

DDP_OVERRIDES = TINY_OVERRIDES + ["data.single_language_batches=true", "data.speed_perturb=[1.0]"]


class RecordLanguages(L.Callback):
    """(global step, language ids) of every training batch this rank runs."""

    def __init__(self):
        self.steps: list[tuple[int, list[int]]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.steps.append((trainer.global_step, sorted(set(batch.lang_ids.tolist()))))


def train_part(args: argparse.Namespace, steps: int, part: str, resume: Path | None) -> Path:
    """Train up to global step ``steps`` (from ``resume`` if given); write this rank's record and ``last.ckpt``."""
    config = load_config(None, DDP_OVERRIDES)
    module = CTCModule.load_from_checkpoint(args.init, map_location="cpu")
    data = Path(args.data)
    train, dev = ([utt for lang in ("de", "fr") for utt in read_data_dir(data / f"{split}_{lang}")]
                  for split in ("train", "dev"))
    datamodule = CTCDataModule(train, dev, load_target_units(args.tokens).encode, module.model.languages,
                               config["data"], FeatureCache(None, FbankConfig(80)))
    masking = AdaptiveMasking(build_criterion(args.criterion), SparsitySchedule(0.3, 0.6, 0, args.steps - 2),
                              interval=1, stop_step=args.steps - 1)
    recorder = RecordLanguages()
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy=ddp_strategy_for(module, "ddp"), max_steps=steps,
        val_check_interval=steps, check_val_every_n_epoch=None, num_sanity_val_steps=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False, callbacks=[masking, recorder],
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    out = Path(args.out)
    trainer.save_checkpoint(out / "last.ckpt")
    torch.save(
        {
            "state_dict": module.state_dict(),
            "criterion": masking.criterion.state_dict(),
            "history": masking.history,
            "languages": recorder.steps,
            "metrics": {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")},
            "global_step": trainer.global_step,
        },
        out / f"{part}_rank{trainer.global_rank}.pt",
    )
    return out / "last.ckpt"


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--init", "--data", "--out", "--criterion", "--tokens"):
        parser.add_argument(name, required=True)
    parser.add_argument("--stop", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    args = parser.parse_args()
    L.seed_everything(0)
    checkpoint = train_part(args, args.stop, "first", None)
    train_part(args, args.steps, "resumed", checkpoint)


if __name__ == "__main__":
    main()
