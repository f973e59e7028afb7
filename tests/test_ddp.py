"""Masked models under DDP: two gloo processes (Lightning, accelerator cpu, devices 2), interrupted and resumed.

Saliency masks carry per-language score parameters, so a step leaves the other languages' scores unused
(find_unused_parameters); every rank must train the same language in a step (``same_language_across_ranks``);
the replicas must stay identical (weights, masks, scores, criterion state); the dev PER is pooled from the ranks'
error counts and equals a single process's over the whole dev set.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from asrprune.data.feature_cache import FeatureCache
from asrprune.data.features import FbankConfig
from asrprune.data.targets import load_target_units
from asrprune.pruning.masking.masked_models import magnitude_masks, with_masks
from asrprune.training.add_language import save_module
from asrprune.training.config import load_config
from asrprune.training.datamodule import CTCDataModule
from asrprune.training.lightning_module import CTCModule
from asrprune.training.train import language_tokens, read_data_dirs
from ddp_masked_run import DDP_OVERRIDES
from tiny_experiment import make_tiny_data

RUNNER = Path(__file__).with_name("ddp_masked_run.py")
TOTAL_STEPS = 6


def _masked_init(tiny: dict, path: Path) -> None:
    """A tiny model (random weights) with per-language saliency masks at 30 % sparsity, saved to ``path``."""
    config = load_config(None, DDP_OVERRIDES)
    units = load_target_units(tiny["tokens"])
    torch.manual_seed(0)
    dense = CTCModule(units.tokens, language_tokens(read_data_dirs(tiny["train"]), units), config["model"],
                      config["optim"], TOTAL_STEPS)
    spec = {"per_language": True, "scores": True, "dormant_trainable": True}
    save_module(with_masks(dense, spec, magnitude_masks(with_masks(dense, {"per_language": False}), 0.3)), path)


def _run(tiny: dict, init: Path, out: Path, stop: int) -> dict[str, list[dict]]:
    """Run tests/ddp_masked_run.py on two processes (interrupted at ``stop``, resumed to TOTAL_STEPS); return
    the ranks' records per part (``first``, ``resumed``)."""
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(RUNNER), "--init", str(init), "--data", str(tiny["tokens"].parent),
               "--tokens", str(tiny["tokens"]), "--out", str(out), "--criterion", "saliency",
               "--stop", str(stop), "--steps", str(TOTAL_STEPS)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(RUNNER.parent), *sys.path])}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return {part: [torch.load(out / f"{part}_rank{r}.pt", weights_only=False) for r in (0, 1)]
            for part in ("first", "resumed")}


def _assert_identical(ranks: list[dict]) -> None:
    first, second = ranks
    assert first["state_dict"].keys() == second["state_dict"].keys()
    for key, value in first["state_dict"].items():
        assert torch.equal(value, second["state_dict"][key]), key
    assert first["criterion"]["rows_seen"] == second["criterion"]["rows_seen"]
    for name, ema in first["criterion"]["ema"].items():
        assert torch.equal(ema, second["criterion"]["ema"][name]), name
    assert first["history"] == second["history"]
    assert first["metrics"] == second["metrics"]


def test_masked_dap_ddp_two_processes_resumed(tmp_path):
    tiny = make_tiny_data(tmp_path / "data")
    init = tmp_path / "init.ckpt"
    _masked_init(tiny, init)

    runs = _run(tiny, init, tmp_path / "run", stop=3)
    first, resumed = runs["first"], runs["resumed"]
    _assert_identical(first)
    _assert_identical(resumed)
    assert first[0]["global_step"] == 3
    assert resumed[0]["global_step"] == TOTAL_STEPS
    assert [r["step"] for r in resumed[0]["history"]] == list(range(1, TOTAL_STEPS))  # restored, then continued
    # Every step, both ranks trained one and the same language (the single-process update rule).
    for run in (first, resumed):
        steps0, steps1 = run[0]["languages"], run[1]["languages"]
        assert len(steps0) == len(steps1) and all(len(langs) == 1 for _, langs in steps0)
        assert steps0 == steps1
    # Both languages' scores got gradients: the saliency criterion saw both.
    assert resumed[0]["criterion"]["rows_seen"] == [0, 1]

    # The pooled dev PER equals one process's over the whole dev set with the final weights.
    metrics = resumed[0]["metrics"]
    assert {"val/per", "val/per_de", "val/per_fr", "val/loss"} <= metrics.keys()
    module = CTCModule.load_from_checkpoint(init, map_location="cpu")
    module.load_state_dict(resumed[0]["state_dict"])
    config = load_config(None, DDP_OVERRIDES)
    datamodule = CTCDataModule(read_data_dirs(tiny["train"]), read_data_dirs(tiny["dev"]),
                               load_target_units(tiny["tokens"]).encode, module.model.languages, config["data"],
                               FeatureCache(None, FbankConfig(80)))
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, use_distributed_sampler=False)
    single = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    for key in ("val/per", "val/per_de", "val/per_fr"):
        assert metrics[key] == pytest.approx(single[key], abs=1e-9), key
    assert metrics["val/loss"] == pytest.approx(single["val/loss"], rel=1e-5)



def test_ddp_strategy_and_unbroadcast_masks(tmp_path):
    """Scores need find_unused_parameters; dense and score-less masks keep plain "ddp"; DDP (one gloo process)
    broadcasts BatchNorm statistics but not the mask buffers."""
    from lightning.pytorch.strategies import DDPStrategy
    from torch.nn.parallel import DistributedDataParallel

    from asrprune.training.lightning_module import ddp_strategy_for

    config = load_config(None, DDP_OVERRIDES)
    dense = CTCModule(["<blank>", "a", "b"], {"de": ["a", "b"]}, config["model"], config["optim"], 10)
    scored = with_masks(dense, {"per_language": True, "scores": True})
    assert ddp_strategy_for(dense, "ddp") == "ddp"
    assert ddp_strategy_for(with_masks(dense, {"per_language": True}), "ddp") == "ddp"
    strategy = ddp_strategy_for(scored, "ddp")
    assert isinstance(strategy, DDPStrategy) and strategy._ddp_kwargs["find_unused_parameters"] is True
    assert ddp_strategy_for(scored, "auto") == "auto"

    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        scored.setup("fit")
        broadcast = {id(b) for b in DistributedDataParallel(scored, find_unused_parameters=True).modules_buffers}
    finally:
        torch.distributed.destroy_process_group()
    masks = scored.model.masks
    assert not any(id(masks.mask(name)) in broadcast for name in masks.names)
    assert any(id(b) in broadcast for name, b in scored.named_buffers() if name.endswith("running_mean"))
