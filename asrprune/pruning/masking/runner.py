"""The library side of ``asrprune prune run|grow``: method settings (:data:`METHOD_DEFAULTS`, checked like
training configs), running and evaluating one method at one sparsity (:func:`run_method`, one ``result.json`` per
method and sparsity), and growing a new language's pathway during few-shot fine-tuning (:func:`grow_pathway`)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

from asrprune.files import atomic_write_json, read_json
from asrprune.model.store import load_model, save_model
from asrprune.pruning.masking.callbacks import ADJUST_STARTS, RANKINGS, AdaptiveMasking
from asrprune.pruning.masking.criteria import CRITERIA, build_criterion
from asrprune.pruning.masking.evaluate import decode_languages, evaluate
from asrprune.pruning.masking.export import dense_state_bytes
from asrprune.pruning.masking.masked_models import with_masks
from asrprune.pruning.masking.methods import REEVALUATION_DEFAULTS, Methods, Setup, sparsity_dir
from asrprune.pruning.masking.schedule import RAMP_SHAPES, SparsitySchedule
from asrprune.training.config import Section, defaults_schema, load_checked, signature_schema
from asrprune.training.lightning_module import CTCModule
from asrprune.training.train import is_global_zero, train

METHOD_DEFAULTS = {
    "steps": 160,
    "rounds": 2,
    "interval": 10,
    "ramp_fraction": 0.5,
    "ramp_shape": "cubic",
    "stop_fraction": 0.8,
    "middle_fraction": 0.5,
    "adaptive": {"criterion": "magnitude"},
    "criteria": {"saliency": {"decay": 0.9, "accumulate": False}, "scores": {"lr": 0.01}},
    "reevaluation": dict(REEVALUATION_DEFAULTS),
}


def method_schema() -> Section:
    """Keys and types of a method config: :data:`METHOD_DEFAULTS`'s, ``adaptive.criterion`` one of the criteria,
    ``criteria.<name>`` that criterion's constructor arguments, ``ramp_shape``, ``reevaluation.ranking`` and
    ``reevaluation.adjust_from`` one of their choices, and the optional ``adaptive.reevaluation`` /
    ``dap.reevaluation`` the keys of ``reevaluation`` (:mod:`asrprune.pruning.masking.methods` describes them; not
    in the defaults, so the settings recorded by runs that do not use them stay as they were)."""
    schema = defaults_schema(METHOD_DEFAULTS)
    schema["ramp_shape"] = Literal[RAMP_SHAPES]
    schema["reevaluation"]["ranking"] = Literal[RANKINGS]
    schema["reevaluation"]["adjust_from"] = Literal[ADJUST_STARTS]
    schema["adaptive"] = Section({"criterion": Literal[tuple(CRITERIA)], "reevaluation": schema["reevaluation"]})
    schema["dap"] = Section({"reevaluation": schema["reevaluation"]})
    schema["criteria"] = Section({name: Section(signature_schema(kind.__init__)) for name, kind in CRITERIA.items()})
    return schema


def load_method_config(path: str | None, budget_scale: float, num_languages: int, steps: int | None = None) -> dict:
    """Method settings (``conf/pathways.yaml`` over :data:`METHOD_DEFAULTS`, checked like training configs by
    :func:`asrprune.training.config.load_checked`; ``steps`` if given over the file), steps and ΔT scaled by
    ``budget_scale`` (at least one step per IMP round and language)."""
    config = load_checked(METHOD_DEFAULTS, method_schema(), path)
    if steps is not None:
        config["steps"] = steps
    if budget_scale <= 0:
        raise ValueError(f"--budget-scale must be > 0, got {budget_scale}")
    config["steps"] = max(config["rounds"] * num_languages, round(config["steps"] * budget_scale))
    config["interval"] = max(1, round(config["interval"] * budget_scale))
    return config


def label(method: str, init: str, criterion: str) -> str:
    return f"dap_{init}_{criterion}" if method == "dap" else method


def method_dir(exp: Path, name: str, sparsity: float) -> Path:
    """Where :func:`run_method` writes the run ``name`` (a :func:`label`) at ``sparsity``: ``<exp>/dense``, else
    ``<exp>/sparsity<percent>/<name>``. recipes/pathways/run.sh asks it for the path of a pruned model."""
    return exp / "dense" if name == "dense" else sparsity_dir(exp, sparsity) / name


def _check_same_method_config(result_path: Path, finished: dict, method_config: dict, method: str) -> None:
    """A finished run is reused only if it was made with the same method settings: a folder name says the method,
    initialisation and criterion, not the re-evaluation options, ΔT or budget, so a changed ``--method_config`` with
    the same ``--exp`` would otherwise silently report the old run."""
    made_with = finished.get("method_config")
    if method == "dense" or made_with is None:  # dense runs have no settings; records older than this check lack them
        return
    wanted = json.loads(json.dumps(method_config))
    if made_with != wanted:
        differing = sorted(k for k in set(made_with) | set(wanted) if made_with.get(k) != wanted.get(k))
        raise ValueError(f"{result_path}: this finished run was made with other method settings "
                         f"({', '.join(differing)} differ); give this configuration its own --exp, or delete the "
                         "folder to rerun it")


def run_method(setup: Setup, method: str, sparsity: float, init: str = "middle", criterion: str = "saliency") -> dict:
    """Train (or reuse) and evaluate one method at one sparsity; writes and returns its ``result.json`` record."""
    name = label(method, init, criterion)
    out = method_dir(setup.exp, name, sparsity)
    result_path = out / "result.json"
    finished = read_json(result_path)
    if finished is not None:
        _check_same_method_config(result_path, finished, setup.method_config, method)
        return finished
    started = time.time()
    if method == "dense":
        checkpoint = str(setup.dense_checkpoint)
        record = {**decode_languages(setup, {lang: checkpoint for lang in setup.languages}, out), "steps": 0,
                  "train_seconds": 0.0, "multilingual": True, "masks": None,
                  "export_bytes": dense_state_bytes(load_model(checkpoint).model), "stages": []}
        sparsity = 0.0
    else:
        outcome = Methods(setup, sparsity).run(method, init, criterion)
        if not is_global_zero():  # under DDP the other ranks only join the training; rank 0 evaluates and writes
            return {}
        record = evaluate(setup, outcome, out)
    if method != "dense":
        record["method_config"] = json.loads(json.dumps(setup.method_config))
    record.update(method=name, sparsity=sparsity, languages=setup.languages,
                  eval_and_train_seconds_this_run=round(time.time() - started, 1))
    atomic_write_json(result_path, record)
    return record


def grow_pathway(checkpoint: str, lang: str, train_dirs: list[str], dev_dirs: list[str], config: dict, exp: Path,
                 criterion: str, interval: int) -> Path:
    """Few-shot fine-tune ``checkpoint`` on ``lang`` while re-evaluating only ``lang``'s mask row every ``interval``
    steps (criterion ``criterion``) at the row's current sparsity; the other pathways' masks stay as they are.

    The starting pathway is the one ``asrprune add-language --pathway`` chose (union of pathways or the closest
    language's); dormant weights are trainable so the new pathway can also take weights no language kept.
    """
    module = CTCModule.from_file(checkpoint)
    masks = module.model.masks
    if masks is None or not masks.state.per_language:
        raise ValueError(f"{checkpoint}: growing a pathway needs per-language masks")
    if lang not in module.model.languages:
        raise ValueError(f"{checkpoint}: no language {lang!r}; add it first with asrprune add-language")
    row = module.model.mask_row(lang)
    sparsity = 1.0 - sum(int(masks.mask(n)[row].sum()) for n in masks.names) / masks.num_weights()
    current = {name: masks.mask(name).clone() for name in masks.names}
    spec = {"per_language": True, "dormant_trainable": True, "scores": build_criterion(criterion).needs_scores}
    exp.mkdir(parents=True, exist_ok=True)
    init = exp / "init.ckpt"
    if is_global_zero() and not init.exists():  # the other DDP ranks wait for it in train()
        save_model(with_masks(module, spec, current).stored(), init)
    steps = config["trainer"]["max_steps"]
    callback = AdaptiveMasking(build_criterion(criterion), SparsitySchedule(sparsity, sparsity), interval,
                               stop_step=int(0.8 * steps), rows=[row])
    return train(config, train_dirs, dev_dirs, None, exp, [callback], init_checkpoint=init)
