"""Masked models under DDP: two gloo processes (Lightning, accelerator cpu, devices 2), interrupted and resumed.

The pruning stages are built by the production code: ``Methods.run`` (``static`` pathways, ``dap`` with each
criterion) and ``grow_pathway`` (``asrprune prune grow``) save their init checkpoint and build their callbacks, and
the test captures what they hand to ``train`` (the stage file of tests/helpers/ddp_masked_run.py) and trains it on two
processes. For each stage: the replicas stay identical (weights, masks, scores, criterion state, mask history); every
rank trains the same language in a step (the data module turns single-language batches, shared by the ranks of a
step, on by itself for a model with per-language masks: the update rule needs one pathway per step, and the stage
configs do not ask for them); every step changes only the
prunable weights the single-process rule lets the batch's language change (its pathway, plus the weights in no
pathway with ``dormant_trainable``) and only that language's scores; the resumed run reaches the last step with the
criterion and history restored; the dev PER is pooled from the ranks' error counts and equals a single process's
over the whole dev set.
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
from asrprune.model.mask_scores import topk_mask
from asrprune.model.mask_storage import masks_key
from asrprune.model.store import ENCODER_PREFIX, save_model
from asrprune.pruning.masking import methods as masking_methods
from asrprune.pruning.masking import runner as masking_runner
from asrprune.pruning.masking.callbacks import AdaptiveMasking
from asrprune.pruning.masking.masked_models import magnitude_masks, with_masks
from asrprune.pruning.masking.methods import SHARED, Methods, Setup
from asrprune.pruning.masking.runner import METHOD_DEFAULTS, grow_pathway
from asrprune.training.config import deep_merge, load_config
from asrprune.training.datamodule import CTCDataModule
from asrprune.training.lightning_module import CTCModule
from asrprune.training.train import language_tokens, read_data_dirs
from tests.helpers.ddp_masked_run import DDP_OVERRIDES

REPO = Path(__file__).resolve().parents[3]
RUNNER = REPO / "tests" / "helpers" / "ddp_masked_run.py"
TOTAL_STEPS = 6
STOP = 3  # the first part ends here; the second resumes from its checkpoint
SPARSITY = 0.6
LANGUAGES = ["de", "fr"]  # language ids 0, 1 (sorted codes)
GROW_LANGUAGE = "fr"
# name -> (method, criterion): Methods.run's (method, dap criterion), or "grow" (grow_pathway, its criterion).
STAGES = {
    "static": ("static", None),
    "dap_magnitude": ("dap", "magnitude"),
    "dap_saliency": ("dap", "saliency"),
    "dap_scores": ("dap", "scores"),
    "grow": ("grow", "saliency"),
}


class _Captured(Exception):
    """Raised by the stand-in for ``train`` once the stage is captured: the production code stops there."""


def _capture_train(stage_file: Path):
    """A stand-in for :func:`asrprune.training.train.train` that saves its arguments as a stage file."""

    def train(config, train_dirs, dev_dirs, tokens_path, exp_dir, callbacks=(), init_checkpoint=None):
        torch.save({"config": config, "train": [str(d) for d in train_dirs], "dev": [str(d) for d in dev_dirs],
                    "callbacks": list(callbacks), "init": str(init_checkpoint)}, stage_file)
        raise _Captured

    return train


def _pathway_masks(dense: CTCModule) -> dict[str, torch.Tensor]:
    """Two different per-language masks at SPARSITY, rows in language-id order, standing in for the LSP masks
    (per-language IMP, not trained here) that static pathways fix: de keeps the largest |θ|, fr a random top-k."""
    de = magnitude_masks(with_masks(dense, SHARED), SPARSITY)
    generator = torch.Generator().manual_seed(1)
    return {name: torch.cat([mask, topk_mask(torch.rand(mask.shape[1:], generator=generator), SPARSITY)[None]])
            for name, mask in de.items()}


def _capture_stages(tiny: dict, root: Path) -> dict[str, Path]:
    """A tiny dense model (random weights), then every stage of :data:`STAGES` as the production code builds it
    (init checkpoint saved, callbacks built), captured where it would start training; stage files by name."""
    config = load_config(None, DDP_OVERRIDES)
    units = load_target_units(tiny["tokens"])
    torch.manual_seed(0)
    dense = CTCModule(units.tokens, language_tokens(read_data_dirs(tiny["train"]), units), config["model"],
                      config["optim"], TOTAL_STEPS)
    save_model(dense.stored(), root / "dense.ckpt")
    data = tiny["tokens"].parent
    method_config = {**METHOD_DEFAULTS, "steps": TOTAL_STEPS, "interval": 1}
    methods = Methods(Setup(root / "dense.ckpt", data, LANGUAGES, config, method_config, root / "exp"), SPARSITY)
    lsp = _pathway_masks(methods.dense)
    methods._lsp_masks = lambda: lsp
    files = {}
    with pytest.MonkeyPatch.context() as patch:
        for name, (method, criterion) in STAGES.items():
            files[name] = root / f"{name}.stage"
            patch.setattr(masking_methods, "train", _capture_train(files[name]))
            patch.setattr(masking_runner, "train", _capture_train(files[name]))
            with pytest.raises(_Captured):
                if method == "grow":  # a new pathway grown from the static pathway model
                    pathways = torch.load(files["static"], weights_only=False)["init"]
                    grow_pathway(pathways, GROW_LANGUAGE, [data / f"train_{GROW_LANGUAGE}"],
                                 [data / f"dev_{GROW_LANGUAGE}"],
                                 deep_merge(config, {"trainer": {"max_steps": TOTAL_STEPS}}), root / "exp" / name,
                                 criterion, interval=1)
                else:
                    methods.run(method, "middle", criterion or "saliency")
    return files


@pytest.fixture(scope="module")
def ddp_runs(tiny_data, tmp_path_factory) -> dict[str, dict]:
    """Every stage trained on two processes (one launch), interrupted at STOP and resumed to TOTAL_STEPS: per stage
    name, the captured ``stage`` and the ranks' records per part (``first``, ``resumed``)."""
    root = tmp_path_factory.mktemp("ddp")
    stages = _capture_stages(tiny_data, root)
    out = root / "runs"
    command = [sys.executable, str(RUNNER), "--out", str(out), "--stop", str(STOP)]
    for name, path in stages.items():
        command += ["--stage", f"{name}={path}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return {
        name: {"stage": torch.load(path, weights_only=False), "tokens": tiny_data["tokens"],
               **{part: [torch.load(out / name / f"{part}_rank{r}.pt", weights_only=False) for r in (0, 1)]
                  for part in ("first", "resumed")}}
        for name, path in stages.items()
    }


def _assert_same(a, b, where: str = "record") -> None:
    """``a`` and ``b`` equal, tensors bit for bit (dicts, lists and tuples compared item by item)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def _assert_update_rule(steps: list[dict], dormant_trainable: bool, scores_trained: bool, fixed_masks: bool) -> None:
    """Every step trained one language l and changed only the prunable weights the single-process rule allows (l's
    pathway, plus the weights in no pathway with ``dormant_trainable``), at least one weight of l's pathway, and no
    score but l's (l's only when ``scores_trained``). With ``fixed_masks`` (static pathways), the check is not
    vacuous: some weights belong to the other language's pathway only."""
    for record in steps:
        where = f"step {record['step']}"
        assert len(record["languages"]) == 1, where
        lang = record["languages"][0]
        trained = only_other = False
        for name, before in record["weights"].items():
            masks = record["masks"][name]
            allowed = masks[lang] | ~masks.any(0) if dormant_trainable else masks[lang]
            changed = before != record["weights_after"][name]
            assert not (changed & ~allowed).any(), f"{where}: {name} changed outside language {lang}'s pathway"
            trained |= bool((changed & masks[lang]).any())
            only_other |= bool((masks.any(0) & ~masks[lang]).any())
        assert trained, f"{where}: no weight of language {lang}'s pathway changed"
        assert only_other or not fixed_masks, f"{where}: the pathways do not differ"
        scores_moved = False
        for name, before in record["scores"].items():
            after = record["scores_after"][name]
            others = [row for row in range(len(before)) if row != lang]
            assert torch.equal(before[others], after[others]), f"{where}: {name}: another language's scores moved"
            scores_moved |= not torch.equal(before[lang], after[lang])
        assert scores_moved == scores_trained, where


def _masks_of(module: CTCModule, state_dict: dict) -> dict[str, torch.Tensor]:
    """The masks in ``state_dict`` (of a module like ``module``), by their state-dict key."""
    keys = [masks_key(ENCODER_PREFIX, name) for name in module.model.masks.names]
    return {key: state_dict[key] for key in keys}


@pytest.mark.parametrize("name", list(STAGES))
def test_masked_method_ddp_two_processes_resumed(ddp_runs, name):
    method, criterion = STAGES[name]
    run = ddp_runs[name]
    stage, first, resumed = run["stage"], run["first"], run["resumed"]
    masking = next((c for c in stage["callbacks"] if isinstance(c, AdaptiveMasking)), None)
    assert (masking is None) == (method == "static")
    init = CTCModule.from_file(stage["init"])
    spec = init.model.masks.spec

    # The replicas are identical: weights, masks, scores, criterion state, mask history, steps, metrics.
    for part in (first, resumed):
        _assert_same(part[0], part[1])
    # Interrupted at STOP, resumed from its checkpoint to the last step.
    assert first[0]["global_step"] == STOP and resumed[0]["global_step"] == TOTAL_STEPS
    assert [r["step"] for r in first[0]["steps"]] == list(range(STOP))
    assert [r["step"] for r in resumed[0]["steps"]] == list(range(STOP, TOTAL_STEPS))
    _assert_same(first[0]["steps"][-1]["weights_after"], resumed[0]["steps"][0]["weights"], "restored weights")
    _assert_same(first[0]["steps"][-1]["scores_after"], resumed[0]["steps"][0]["scores"], "restored scores")

    # Every step, both ranks trained one and the same language (compared above), and the per-language update rule
    # is the single-process one.
    steps = first[0]["steps"] + resumed[0]["steps"]
    trained_rows = sorted({r["languages"][0] for r in steps})
    expected_rows = [LANGUAGES.index(GROW_LANGUAGE)] if method == "grow" else list(range(len(LANGUAGES)))
    assert trained_rows == expected_rows
    _assert_update_rule(steps, spec["dormant_trainable"], criterion == "scores" and method == "dap",
                        fixed_masks=method == "static")

    final_masks = _masks_of(init, resumed[0]["state_dict"])
    init_masks = _masks_of(init, init.state_dict())
    if masking is None:  # static pathways: the masks never change
        _assert_same(init_masks, final_masks, "static masks")
        for record in steps:
            for n, mask in record["masks"].items():
                assert torch.equal(mask, final_masks[masks_key(ENCODER_PREFIX, n)]), n
    else:
        # The mask history was restored and continued: a re-evaluation every interval up to the stop step, of the
        # stage's rows (grow: the new language's only).
        expected = [s for s in range(1, TOTAL_STEPS + 1) if s % masking.interval == 0 and s <= masking.stop_step]
        assert [h["step"] for h in first[0]["masking"]["history"]] == [s for s in expected if s <= STOP]
        history = resumed[0]["masking"]["history"]
        assert [h["step"] for h in history] == expected
        rows = masking.rows if masking.rows is not None else list(range(len(LANGUAGES)))
        assert all(sorted(h["rows"]) == rows for h in history)
        assert history[-1]["sparsity"] == pytest.approx(masking.schedule.final)
        criterion_state = resumed[0]["masking"]["criterion"]
        if criterion == "saliency":  # every trained language's scores gave the criterion gradients
            assert criterion_state["rows_seen"] == trained_rows
        elif criterion == "scores":
            assert criterion_state["optimizer"]["state"]
        for key, mask in final_masks.items():
            for row in range(len(LANGUAGES)):
                if row not in rows:  # grow: the other pathways stay as they were
                    assert torch.equal(mask[row], init_masks[key][row]), key
                elif method == "dap":  # at the target sparsity, exactly, per tensor
                    assert int(mask[row].sum()) == round(mask[row].numel() * (1 - SPARSITY)), key

    # The pooled dev PER equals one process's over the whole dev set with the final weights.
    metrics = resumed[0]["metrics"]
    dev_languages = sorted(Path(d).name.removeprefix("dev_") for d in stage["dev"])
    assert metrics.keys() == {"val/per", "val/loss", *(f"val/per_{lang}" for lang in dev_languages)}
    init.load_state_dict(resumed[0]["state_dict"])
    config = stage["config"]
    datamodule = CTCDataModule(read_data_dirs(stage["train"]), read_data_dirs(stage["dev"]),
                               load_target_units(run["tokens"]).encode,
                               init.model, config["data"], FeatureCache(None, FbankConfig(80)),
                               config["seed"])
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, use_distributed_sampler=False)
    single = trainer.validate(init, datamodule=datamodule, verbose=False)[0]
    for key in metrics.keys() - {"val/loss"}:
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
