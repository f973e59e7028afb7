"""Two-process (gloo) training of masked models (pruning stages), launched once by tests/pruning/masking/test_ddp.py.

Each ``--stage NAME=PATH`` is a stage file written by the test: what the production code (``Methods`` of
:mod:`asrprune.pruning.masking.methods`, ``grow_pathway`` of :mod:`asrprune.pruning.masking.cli`) passed to
:func:`asrprune.training.train.train`: the config, train and dev data dirs, the init checkpoint it saved and the
callbacks it built (pickled fresh, so every load gives new, untrained callbacks, as a new process would build).

Lightning's DDP launcher starts this script again for rank 1. For every stage, in order, both processes train
``--stop`` of the config's ``trainer.max_steps`` steps (the LR and mask schedules run to ``max_steps``), save
``<out>/<NAME>/last.ckpt`` and then resume from it with a new module, new callbacks and a new trainer (the launched
processes and their process group are reused: Lightning does not launch again once ``LOCAL_RANK`` is set; one
launch for all stages, as the two interpreters' imports take most of a launch), validating at the end of each part.
For each part every rank writes ``<out>/<NAME>/<part>_rank<r>.pt`` (part ``first`` or ``resumed``): its
state_dict, the adaptive-masking callback's state (criterion state and mask history; None without one), every
training step's languages, masks, prunable weights and scores before and after it, and the validation metrics.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import lightning as L
import torch

from asrprune.data.feature_cache import FeatureCache
from asrprune.data.features import FbankConfig
from asrprune.pruning.masking.callbacks import AdaptiveMasking
from asrprune.training.datamodule import CTCDataModule
from asrprune.training.lightning_module import ddp_strategy_for
from asrprune.training.train import _module_from_checkpoint, read_data_dirs
from tests.helpers.tiny_experiment import TINY_OVERRIDES

DDP_OVERRIDES = TINY_OVERRIDES + ["data.speed_perturb=[1.0]"]


def _masked_tensors(pl_module) -> dict[str, dict[str, torch.Tensor]]:
    """Copies of every prunable weight θ, its masks (K, *shape) and its scores (K, *shape; absent without)."""
    masks = pl_module.model.masks
    tensors = {"weights": {}, "masks": {}, "scores": {}}
    for name in masks.names:
        tensors["weights"][name] = masks.weight(name).detach().clone()
        tensors["masks"][name] = masks.mask(name).clone()
        scores = masks.parametrization(name).scores
        if scores is not None:
            tensors["scores"][name] = torch.stack([s.detach().clone() for s in scores])
    return tensors


class RecordSteps(L.Callback):
    """Per training step this rank runs: the global step before it, the batch's language ids, the masks the step
    used, and the prunable weights and scores before and after the optimizer step (before any re-evaluation of the
    masks at the step's end changes nothing of those: it only rewrites masks)."""

    def __init__(self):
        self.steps: list[dict] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        before = _masked_tensors(pl_module)
        self.steps.append({"step": trainer.global_step, "languages": sorted(set(batch.lang_ids.tolist())),
                           "masks": before["masks"], "weights": before["weights"], "scores": before["scores"]})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        after = _masked_tensors(pl_module)
        self.steps[-1].update(weights_after=after["weights"], scores_after=after["scores"])


def train_part(stage_path: Path, out: Path, steps: int, part: str, resume: Path | None) -> Path:
    """Train the stage up to global step ``steps`` (from ``resume`` if given) as :func:`asrprune.training.train.train`
    builds its module and data; write this rank's record and ``last.ckpt``."""
    stage = torch.load(stage_path, weights_only=False)
    config = stage["config"]
    L.seed_everything(config["seed"], workers=True)
    module, units = _module_from_checkpoint(stage["init"], None, config["optim"], config["trainer"]["max_steps"])
    datamodule = CTCDataModule(
        read_data_dirs(stage["train"]), read_data_dirs(stage["dev"]), units.encode, module.model,
        config["data"], FeatureCache(None, FbankConfig(config["model"]["num_mel_bins"])), config["seed"],
    )
    callbacks = list(stage["callbacks"])
    masking = next((c for c in callbacks if isinstance(c, AdaptiveMasking)), None)
    recorder = RecordSteps()
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy=ddp_strategy_for(module, "ddp"), max_steps=steps,
        val_check_interval=steps, check_val_every_n_epoch=None, num_sanity_val_steps=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False, callbacks=[*callbacks, recorder],
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    out.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(out / "last.ckpt")
    torch.save(
        {
            "state_dict": module.state_dict(),
            "masking": masking.state_dict() if masking is not None else None,
            "steps": recorder.steps,
            "metrics": {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")},
            "global_step": trainer.global_step,
        },
        out / f"{part}_rank{trainer.global_rank}.pt",
    )
    return out / "last.ckpt"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stage", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--out", required=True)
    parser.add_argument("--stop", type=int, required=True)
    args = parser.parse_args()
    for item in args.stage:
        name, path = item.split("=", 1)
        steps = torch.load(path, weights_only=False)["config"]["trainer"]["max_steps"]
        out = Path(args.out) / name
        checkpoint = train_part(Path(path), out, args.stop, "first", None)
        train_part(Path(path), out, steps, "resumed", checkpoint)


if __name__ == "__main__":
    main()
