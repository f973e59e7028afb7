"""The pruning methods, each a sequence of training stages from the dense multilingual checkpoint.

Every method gets the same data (the languages' train sets, single-language batches, the same fine-tuning config)
and the same budget ``steps`` of optimizer steps per sparsity; monolingual methods split it evenly over the
languages (``steps / len(languages)`` per language). Methods built on another method's masks (static pathways and
DAP from LSP masks, DAP from the LAP mask) are charged that method's steps and time as well.

Sparse monolingual models (one shared mask per language, trained on that language only):
- ``omp``: one-shot magnitude pruning to the target, then fine-tuning with the mask fixed.
- ``lth``: ``rounds`` of IMP, each round rewinding every weight to the dense multilingual checkpoint (the
  lottery-ticket rewind point) before re-training.
- ``lsp``: language-specific pruning = per-language IMP, ``rounds`` rounds each removing the same fraction of the
  remaining weights (1 - (1 - s)^(r/R) after round r) and re-training with a fresh LR schedule.
- ``adaptive``: adaptive masking in one run: the mask is re-evaluated every ΔT steps on a cubic schedule from 0 to
  the target (criterion ``adaptive.criterion``), dormant weights train PARP-style and may regrow.
One multilingual model:
- ``lap``: language-agnostic pruning = IMP on the pooled languages, one shared mask.
- ``static``: ASR pathways: the LSP masks, fixed, over the dense multilingual weights, trained jointly.
- ``dap``: Dynamic ASR Pathways: per-language masks re-evaluated every ΔT steps during joint training with a
  criterion (magnitude / saliency / scores), starting from the LAP mask, the LSP masks, or a magnitude mask at a
  middle sparsity (``middle_fraction`` × target) that the cubic schedule raises to the target. Masks are fixed for
  the last ``1 - stop_fraction`` of the run. Weights start from the dense multilingual checkpoint in every DAP and
  static variant (the initialisation compared is the mask).

Re-evaluation options (``method_config["reevaluation"]``, :data:`REEVALUATION_DEFAULTS`; the defaults are the
behaviour before they existed), for ``adaptive`` and ``dap`` alike (one mask or one per language), each overridable
per method in ``method_config["adaptive"]["reevaluation"]`` and ``method_config["dap"]["reevaluation"]`` (so a
comparison can run each method with the settings its dev study chose):
- ``adjust``: PARP's "adjust" per pathway: weights a language's mask excludes keep training from that language's
  batches into that language's own adjusted values (zero when pruned), which compete with its kept |θ| at
  re-evaluation (:mod:`asrprune.model.mask_parametrization` says what happens to shared weights). Off: dormant
  weights (in no mask) train on θ itself, as before.
- ``adjust_from``: where an excluded weight's adjusted value starts (at the stage's start and whenever the weight
  is pruned): ``zero`` (PARP: it must grow from zero past the kept magnitudes to come back) or ``weight`` (θ: it
  keeps competing from its value, so the languages' gradients separate the pathways sooner).
- ``ranking``: ``tensor`` (top-k per prunable tensor) or ``global`` (one ranking over all prunable tensors, PARP).
- ``margin``, ``max_swap_fraction``: churn control (:class:`asrprune.pruning.masking.callbacks.AdaptiveMasking`).
``ramp_shape`` (``cubic`` or ``linear``) shapes the sparsity ramp over ``ramp_fraction`` of the budget; ``interval``
(ΔT) and the ramp never change the budget ``steps``. For the gradient criteria, ``criteria.saliency.accumulate``
ranks the mean saliency over the whole interval instead of an EMA.

Each stage writes ``stage.json`` (atomically) when done and is skipped when run again; a killed stage resumes from
its newest readable checkpoint, saved every ``trainer.checkpoint_every_n_steps`` steps of the fine-tuning config
(default its ``val_check_interval``), with the masks and the adaptive-masking schedule state it holds, and ends
with the masks and weights of an uninterrupted stage, bit for bit (:func:`asrprune.training.train.train`). The final
checkpoint of a stage is its ``last.ckpt`` (validation runs once, at the last step, so that the masks evaluated
are the ones at the target sparsity).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from asrprune.files import atomic_write_json, read_json
from asrprune.model.store import save_model
from asrprune.pruning.masking.callbacks import AdaptiveMasking
from asrprune.pruning.masking.criteria import build_criterion
from asrprune.pruning.masking.masked_models import Masks, magnitude_masks, plain_state, read_masks, with_masks
from asrprune.pruning.masking.schedule import RAMP_SHAPES, SparsitySchedule
from asrprune.training.config import deep_merge
from asrprune.training.lightning_module import CTCModule
from asrprune.training.train import checkpoint_interval, is_global_zero, train

MONOLINGUAL = ("omp", "lth", "lsp", "adaptive")
MULTILINGUAL = ("lap", "static", "dap")
DAP_INITS = ("middle", "lap", "lsp")

# method_config["reevaluation"]: see the module docstring.
REEVALUATION_DEFAULTS = {"adjust": False, "adjust_from": "zero", "ranking": "tensor", "margin": 0.0,
                         "max_swap_fraction": 1.0}

SHARED = {"per_language": False}
PATHWAYS = {"per_language": True}


def method_reevaluation(method_config: dict, method: str) -> dict:
    """Re-evaluation options of ``method`` (``adaptive`` or ``dap``) under ``method_config``: the defaults, the
    config's shared ``reevaluation``, then the method's own ``<method>.reevaluation``."""
    own = method_config.get(method, {}).get("reevaluation", {})
    return {**REEVALUATION_DEFAULTS, **method_config.get("reevaluation", {}), **own}


@dataclass
class Setup:
    """Inputs shared by all methods.

    ``method_config`` keys: ``steps`` (budget per method and sparsity), ``rounds`` (IMP/LTH/LAP/LSP), ``interval``
    (ΔT), ``ramp_fraction``, ``ramp_shape``, ``stop_fraction``, ``middle_fraction``, ``adaptive`` ({criterion}),
    ``criteria`` (per-criterion options), ``reevaluation`` (:data:`REEVALUATION_DEFAULTS`). ``train_config``: an
    ``asrprune train`` config (data, optim, trainer); max_steps and val_check_interval are set per stage.
    """

    dense_checkpoint: Path
    data: Path
    languages: list[str]
    train_config: dict
    method_config: dict
    exp: Path

    def data_dirs(self, split: str, languages: list[str]) -> list[Path]:
        dirs = [self.data / f"{split}_{lang}" for lang in languages]
        for path in dirs:
            if not path.is_dir():
                raise OSError(f"{path}: data directory not found (--data {self.data}, languages {languages})")
        return dirs


@dataclass
class Outcome:
    """A method's result: the checkpoint serving each language, steps and wall seconds spent (prerequisites
    included), and whether one multilingual model serves all languages."""

    models: dict[str, str]
    steps: int
    seconds: float
    multilingual: bool
    stages: list[str] = field(default_factory=list)

    def plus(self, other: "Outcome") -> "Outcome":
        """This outcome charged with ``other``'s cost (a prerequisite)."""
        return Outcome(self.models, self.steps + other.steps, self.seconds + other.seconds, self.multilingual,
                       other.stages + self.stages)


def run_stage(setup: Setup, exp_dir: Path, make_init: Callable[[], CTCModule], languages: list[str], steps: int,
              callbacks: Callable[[], list] = list) -> Outcome:
    """Train ``steps`` steps from ``make_init()`` on ``languages`` in ``exp_dir`` (or reuse a finished stage, or
    resume a killed one from its checkpoints; ``init.ckpt`` and ``stage.json`` are written atomically)."""
    done = exp_dir / "stage.json"
    finished = read_json(done)
    if finished is not None:
        return Outcome(**finished)
    exp_dir.mkdir(parents=True, exist_ok=True)
    init = exp_dir / "init.ckpt"
    if is_global_zero() and not init.exists():  # the other DDP ranks wait for it in train()
        save_model(make_init().stored(), init)
    trainer = setup.train_config["trainer"]
    config = deep_merge(setup.train_config, {"trainer": {
        "max_steps": steps, "val_check_interval": steps,
        "checkpoint_every_n_steps": min(steps, checkpoint_interval(trainer)),
        "log_every_n_steps": min(steps, trainer.get("log_every_n_steps", 25)),
    }})
    started = time.time()
    train(config, setup.data_dirs("train", languages), setup.data_dirs("dev", languages), None, exp_dir,
          callbacks(), init_checkpoint=init)
    last = exp_dir / "checkpoints" / "last.ckpt"
    outcome = Outcome({lang: str(last) for lang in languages}, steps, round(time.time() - started, 1),
                      len(languages) > 1, [str(exp_dir)])
    if is_global_zero():
        atomic_write_json(done, asdict(outcome))
    return outcome


def sparsity_dir(exp: Path, sparsity: float) -> Path:
    """``<exp>/sparsity<percent>``: the folder of every method's runs at ``sparsity``."""
    return exp / f"sparsity{round(sparsity * 100)}"


def _first_row(masks: Masks) -> Masks:
    return {name: mask[:1] for name, mask in masks.items()}


class Methods:
    """All methods at one target ``sparsity``; stages live under ``setup.exp / f"sparsity{pct}" / <method>``."""

    def __init__(self, setup: Setup, sparsity: float):
        self.setup = setup
        self.sparsity = sparsity
        self.conf = setup.method_config
        self.root = sparsity_dir(setup.exp, sparsity)
        self._dense: CTCModule | None = None
        self._cache: dict[str, Outcome] = {}
        self.ramp_shape = self.conf.get("ramp_shape", RAMP_SHAPES[0])

    # ---- building blocks ------------------------------------------------------------------------------------
    @property
    def dense(self) -> CTCModule:
        if self._dense is None:
            self._dense = CTCModule.from_file(self.setup.dense_checkpoint)
        return self._dense

    def _steps_per_language(self) -> int:
        return max(1, self.conf["steps"] // len(self.setup.languages))

    def _imp(self, exp_dir: Path, languages: list[str], steps: int, rewind: bool) -> Outcome:
        """IMP (or LTH with ``rewind``) in ``rounds`` rounds of ``steps / rounds`` steps; one shared mask."""
        rounds = self.conf["rounds"]
        round_steps = max(1, steps // rounds)
        current = with_masks(self.dense, SHARED)
        total = None
        for r in range(1, rounds + 1):
            target = 1.0 - (1.0 - self.sparsity) ** (r / rounds)

            def make_init(current=current, target=target):
                kept = {name: current.model.masks.mask(name)[0] for name in current.model.masks.names}
                mask = magnitude_masks(current, target, within=kept)
                return with_masks(current, SHARED, mask, plain_state(self.dense) if rewind else None)

            stage = run_stage(self.setup, exp_dir / f"round{r}", make_init, languages, round_steps)
            total = stage if total is None else stage.plus(total)
            current = CTCModule.from_file(stage.models[languages[0]])
        return Outcome(total.models, total.steps, total.seconds, len(languages) > 1, total.stages)

    def _per_language(self, name: str, run: Callable[[str, Path], Outcome]) -> Outcome:
        """Run ``run(lang, dir)`` for every language; the outcome serves each language by its own model."""
        outcomes = [run(lang, self.root / name / lang) for lang in self.setup.languages]
        models = {lang: o.models[lang] for lang, o in zip(self.setup.languages, outcomes)}
        return Outcome(models, sum(o.steps for o in outcomes), sum(o.seconds for o in outcomes), False,
                       [s for o in outcomes for s in o.stages])

    def reevaluation(self, method: str) -> dict:
        return method_reevaluation(self.conf, method)

    def _adaptive_callback(self, method: str, criterion: str, rows_schedule: SparsitySchedule, steps: int):
        options = self.conf.get("criteria", {}).get(criterion, {})
        interval = self.conf["interval"]
        stop = int(steps * self.conf["stop_fraction"])
        reevaluation = self.reevaluation(method)
        churn = {key: reevaluation[key] for key in ("ranking", "margin", "max_swap_fraction")}
        churn["adjust_restart"] = reevaluation["adjust_from"]
        return lambda: [AdaptiveMasking(build_criterion(criterion, options), rows_schedule, interval, stop, **churn)]

    def _adaptive_init(self, method: str, spec: dict, masks: Masks | None = None) -> CTCModule:
        """The dense weights with ``masks`` under an adaptive ``spec``, adjusted values started per ``adjust_from``."""
        module = with_masks(self.dense, spec, masks)
        if spec.get("adjust"):
            module.model.masks.start_adjusted(self.reevaluation(method)["adjust_from"])
        return module

    def _adaptive_spec(self, method: str, per_language: bool, criterion: str) -> dict:
        """Mask spec of the adaptive methods: dormant weights trainable on θ, or per-language adjusted values."""
        adjust = self.reevaluation(method)["adjust"]
        spec = {"per_language": per_language, "dormant_trainable": not adjust,
                "scores": build_criterion(criterion).needs_scores}
        return {**spec, "adjust": True} if adjust else spec  # without adjust: the spec of earlier runs

    def _lsp_masks(self) -> Masks:
        """Per-language masks (K, *shape) from the LSP models, rows in the model's language order."""
        lsp = self.run("lsp")
        languages = self.dense.model.languages
        per_lang = {lang: read_masks(lsp.models[lang]) for lang in self.setup.languages}
        names = next(iter(per_lang.values())).keys()
        # A model language outside setup.languages (no data here) gets the dense model's magnitude mask.
        fallback = magnitude_masks(with_masks(self.dense, SHARED), self.sparsity)
        return {
            name: torch.cat([per_lang[lang][name][:1] if lang in per_lang else fallback[name] for lang in languages])
            for name in names
        }

    # ---- methods ----------------------------------------------------------------------------------------------
    def run(self, method: str, init: str = "middle", criterion: str = "saliency") -> Outcome:
        """Run (or reuse) ``method``; ``init``/``criterion`` only for ``dap``."""
        key = f"dap_{init}_{criterion}" if method == "dap" else method
        if key not in self._cache:
            if method == "dap":
                self._cache[key] = self._dap(init, criterion)
            elif method in MONOLINGUAL + MULTILINGUAL:
                self._cache[key] = getattr(self, f"_{method}")()
            else:
                raise ValueError(f"unknown method {method!r}; known: {MONOLINGUAL + MULTILINGUAL}")
        return self._cache[key]

    def _omp(self) -> Outcome:
        def one(lang: str, exp_dir: Path) -> Outcome:
            def make_init():
                start = with_masks(self.dense, SHARED)
                return with_masks(start, SHARED, magnitude_masks(start, self.sparsity))
            return run_stage(self.setup, exp_dir, make_init, [lang], self._steps_per_language())
        return self._per_language("omp", one)

    def _lth(self) -> Outcome:
        return self._per_language(
            "lth", lambda lang, d: self._imp(d, [lang], self._steps_per_language(), rewind=True)
        )

    def _lsp(self) -> Outcome:
        return self._per_language(
            "lsp", lambda lang, d: self._imp(d, [lang], self._steps_per_language(), rewind=False)
        )

    def _adaptive(self) -> Outcome:
        criterion = self.conf["adaptive"]["criterion"]
        steps = self._steps_per_language()
        schedule = SparsitySchedule(0.0, self.sparsity, 0, int(steps * self.conf["ramp_fraction"]), self.ramp_shape)
        spec = self._adaptive_spec("adaptive", False, criterion)

        def one(lang: str, exp_dir: Path) -> Outcome:
            return run_stage(self.setup, exp_dir, lambda: self._adaptive_init("adaptive", spec), [lang], steps,
                             self._adaptive_callback("adaptive", criterion, schedule, steps))
        return self._per_language("adaptive", one)

    def _lap(self) -> Outcome:
        return self._imp(self.root / "lap", self.setup.languages, self.conf["steps"], rewind=False)

    def _static(self) -> Outcome:
        masks = self._lsp_masks()
        stage = run_stage(self.setup, self.root / "static", lambda: with_masks(self.dense, PATHWAYS, masks),
                          self.setup.languages, self.conf["steps"])
        return stage.plus(self.run("lsp"))

    def _dap(self, init: str, criterion: str) -> Outcome:
        if init not in DAP_INITS:
            raise ValueError(f"unknown DAP initialisation {init!r}; known: {DAP_INITS}")
        steps = self.conf["steps"]
        prerequisite = None
        if init == "middle":
            middle = self.sparsity * self.conf["middle_fraction"]
            schedule = SparsitySchedule(middle, self.sparsity, 0, int(steps * self.conf["ramp_fraction"]),
                                        self.ramp_shape)
        else:
            schedule = SparsitySchedule(self.sparsity, self.sparsity)
            prerequisite = self.run(init)

        def make_init():
            start = with_masks(self.dense, SHARED)
            if init == "middle":
                masks = magnitude_masks(start, schedule.initial)
            elif init == "lap":
                masks = _first_row(read_masks(prerequisite.models[self.setup.languages[0]]))
            else:
                masks = self._lsp_masks()
            return self._adaptive_init("dap", self._adaptive_spec("dap", True, criterion), masks)

        stage = run_stage(self.setup, self.root / f"dap_{init}_{criterion}", make_init, self.setup.languages, steps,
                          self._adaptive_callback("dap", criterion, schedule, steps))
        return stage.plus(prerequisite) if prerequisite is not None else stage
