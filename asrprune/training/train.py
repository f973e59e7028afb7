"""``asrprune train``: train the multilingual CTC conformer with Lightning (resumable, DDP-ready)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Sequence

import lightning as L
import torch
import yaml
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from tqdm import tqdm

from asrprune.benchmarking.provenance import RECIPE_LOAD, provenance
from asrprune.cli_options import add_exp, add_train_config, add_train_dev_dirs
from asrprune.data.feature_cache import FeatureCache
from asrprune.data.features import CMVNAccumulator, FbankConfig
from asrprune.data.kaldi_dir import Utterance, read_data_dir
from asrprune.data.targets import PHONE, TargetUnits, load_target_units
from asrprune.files import (
    CorruptCheckpoint, atomic_torch_save, atomic_write_json, atomic_write_text, read_checkpoint, read_json, warn,
)
from asrprune.training.checkpoints import (
    AtomicCheckpointIO, RandomStates, StepCheckpoint, newest_readable_checkpoint, resume_candidates,
)
from asrprune.training.config import ConfigError, check_config, load_config
from asrprune.training.curves import plot_training_curves
from asrprune.training.datamodule import CTCDataModule
from asrprune.training.lightning_module import CTCModule, ddp_strategy_for
from asrprune.training.stats import TrainingStats


def read_data_dirs(paths: Sequence[str | Path]) -> list[Utterance]:
    """Concatenate the utterances of several data directories."""
    return [utt for path in paths for utt in read_data_dir(path)]


def language_tokens(utterances: Sequence[Utterance], units: TargetUnits) -> dict[str, list[str]]:
    """Target tokens seen per language in ``utterances``, languages sorted by code (the order fixes language ids)."""
    seen: dict[str, set[str]] = {}
    for utt in utterances:
        seen.setdefault(utt.lang, set()).update(units.units(utt))
    return {lang: sorted(seen[lang]) for lang in sorted(seen)}


def global_cmvn(utterances: Sequence[Utterance], cache: FeatureCache, max_utterances: int, seed: int):
    """Mean and std (bins,) of unperturbed filterbanks over up to ``max_utterances`` randomly chosen utterances."""
    chosen = torch.randperm(len(utterances), generator=torch.Generator().manual_seed(seed))[:max_utterances]
    accumulator = CMVNAccumulator(cache.fbank.num_mel_bins)
    for i in tqdm(chosen.tolist(), desc="CMVN statistics", unit="utt"):
        accumulator.add(cache.features(utterances[i]))
    return accumulator.mean_std()


def _module_from_checkpoint(
    checkpoint: str | Path, tokens_path: str | Path | None, optim: dict, max_steps: int
) -> tuple[CTCModule, TargetUnits]:
    """A module with ``checkpoint``'s architecture, tokens and weights (any model file, a compact export too:
    :func:`asrprune.model.store.load_model`), and a new optimizer/schedule setting."""
    module = CTCModule.from_file(checkpoint, optim, max_steps)  # a bad file stops here, named, in one line
    hparams = module.hparams
    if hparams.target_unit == PHONE:
        units = TargetUnits(PHONE, hparams.tokens)
    else:
        units = load_target_units(tokens_path) if tokens_path else None
        if units is None or units.tokens != list(hparams.tokens):
            raise ValueError(f"{checkpoint}: a subword model needs --tokens with its own sentencepiece model")
    return module, units


SUMMARY = "train_summary.json"


def is_global_zero() -> bool:
    """Whether this process is global rank 0, also before the Trainer exists (Lightning reads the rank from the
    launcher's environment: RANK, LOCAL_RANK, SLURM_PROCID)."""
    return rank_zero_only.rank == 0


def written_by_rank_zero(path: str | Path, timeout_seconds: float = 600.0) -> Path:
    """``path``, on global rank 0 at once; on the other ranks once rank 0 has written it (a stage's
    ``init.ckpt``). Under torchrun or SLURM every rank starts the command together, before a process group exists
    that could give a barrier, so the other ranks wait for the file (written atomically: it appears whole)."""
    deadline = time.time() + timeout_seconds
    while not is_global_zero() and not Path(path).exists():
        if time.time() > deadline:
            raise OSError(f"{path}: rank {rank_zero_only.rank} waited {timeout_seconds:.0f} s for global rank 0 to "
                          "write it; see rank 0's error")
        time.sleep(1.0)
    return Path(path)


def finished_summary(exp_dir: Path, max_steps: int) -> dict | None:
    """The ``train_summary.json`` of a run that reached ``max_steps`` (written last, atomically: it marks a finished
    run), or None."""
    summary = read_json(exp_dir / SUMMARY)
    return summary if summary is not None and summary.get("global_step", -1) >= max_steps else None


def checkpoint_interval(trainer_conf: dict) -> int:
    """Steps between ``step<N>.ckpt`` saves: ``trainer.checkpoint_every_n_steps``, else ``val_check_interval``."""
    every = trainer_conf.get("checkpoint_every_n_steps") or trainer_conf.get("val_check_interval")
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ConfigError(
            f"trainer.checkpoint_every_n_steps: set a number of steps >= 1 (val_check_interval {every!r} is not one)"
        )
    return every


def resume_checkpoint(checkpoints: Path) -> Path | None:
    """The newest readable checkpoint to resume from (unreadable newer ones reported in one line each on rank 0),
    or None to start from scratch. Rank 0 first removes temporary files of writes a kill interrupted."""
    report = warn if is_global_zero() else (lambda line: None)
    if is_global_zero():
        for temp in checkpoints.glob(".*.tmp"):
            temp.unlink(missing_ok=True)
    found = newest_readable_checkpoint(checkpoints, report)
    if found is None and resume_candidates(checkpoints):
        report(f"warning: {checkpoints}: no readable checkpoint; training starts over")
    return found


def check_same_max_steps(checkpoint: Path, max_steps: int, exp_dir: Path) -> None:
    """Stop with one line (:class:`ConfigError`) if the run saved in ``checkpoint`` was started with another
    ``trainer.max_steps``: its one-cycle LR schedule, restored with the optimizer, has the old length, so a longer
    run would fail past its end (torch: "Tried to step N times ...") and a shorter one would stop before the LR
    anneals."""
    saved = read_checkpoint(checkpoint, mmap=True)
    started_with = saved.get("hyper_parameters", {}).get("max_steps")
    if started_with is not None and started_with != max_steps:
        raise ConfigError(
            f"trainer.max_steps={max_steps}, but the run in {exp_dir} was started with trainer.max_steps="
            f"{started_with} ({checkpoint} is at step {saved.get('global_step')}; its LR schedule has "
            f"{started_with} steps): resume with trainer.max_steps={started_with}, or train on from it in a new "
            f"experiment folder (asrprune train --init {checkpoint} --exp NEW_FOLDER)"
        )


def cmvn_statistics(path: Path, utterances: Sequence[Utterance], cache: FeatureCache, config: dict) -> dict:
    """Global CMVN ``{"mean", "std"}`` (bins,) from ``path``, or computed (every rank computes the same numbers from
    the same seed; only rank 0 writes ``path``, atomically)."""
    if path.exists():
        return read_checkpoint(path)
    mean, std = global_cmvn(utterances, cache, config["data"]["cmvn_max_utterances"], config["seed"])
    if is_global_zero():
        atomic_torch_save({"mean": mean, "std": std}, path)
    return {"mean": mean, "std": std}


def best_or_last(best: ModelCheckpoint, checkpoints: Path) -> Path:
    """The best checkpoint's real file (under ``checkpoints`` as the caller spelt it; Lightning keeps the real
    path), or ``last.ckpt`` when no validation chose one or the file is unreadable."""
    last = checkpoints / "last.ckpt"
    if not best.best_model_path:
        return last
    path = checkpoints / Path(best.best_model_path).name
    try:
        read_checkpoint(path, mmap=True)
    except (CorruptCheckpoint, FileNotFoundError) as error:
        warn(f"warning: {error}; the best checkpoint is not usable, {last} is printed instead")
        return last
    return path


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matrix products in hardware (AVX512-BF16 or AMX), where bf16 autocast pays."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(config_precision: str, accelerator: str = "auto") -> str:
    """Lightning precision for ``precision: auto`` on the accelerator that will actually run the model.

    - CUDA: ``bf16-mixed`` where the GPU computes bf16 natively (Ampere and newer), else ``16-mixed`` (V100, T4);
    - CPU: ``bf16-mixed`` where the processor has AVX512-BF16 or AMX (the mini recipe's 1000-step run in bf16 reached
      dev PER 9.2, benchmarks/results/mini_recipe.json; its speed-up is measured in README, *Benchmarks*), else
      ``32-true``.
    Autocast leaves the CTC loss and the log-softmax in float32 (``ConformerCTC.forward`` casts the logits).
    Any other value is passed to Lightning as it is.
    """
    if config_precision != "auto":
        return config_precision
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if on_gpu:
        return "bf16-mixed" if torch.cuda.is_bf16_supported(including_emulation=False) else "16-mixed"
    return "bf16-mixed" if cpu_has_native_bf16() else "32-true"


def train(
    config: dict,
    train_dirs: Sequence[str | Path],
    dev_dirs: Sequence[str | Path],
    tokens_path: str | Path | None,
    exp_dir: str | Path,
    callbacks: Sequence[L.Callback] = (),
    init_checkpoint: str | Path | None = None,
) -> Path:
    """Train (or resume) a model in ``exp_dir``; return the path of the best checkpoint (lowest dev PER).

    Writes ``exp_dir/checkpoints/best.ckpt`` (lowest dev PER), ``step<N>.ckpt`` every
    ``trainer.checkpoint_every_n_steps`` steps (default: ``val_check_interval``) and at the end (the two newest
    kept; ``last.ckpt`` links to the newest), ``exp_dir/tensorboard/``, ``exp_dir/config.yaml``, ``exp_dir/cmvn.pt``,
    ``exp_dir/training_curves.png`` and, last, ``exp_dir/train_summary.json``; every file is written atomically
    and only by global rank 0. Re-running with the same ``exp_dir`` does nothing once ``train_summary.json`` says
    ``max_steps`` were reached, and otherwise resumes from the newest readable checkpoint (an unreadable one is
    reported in one line and the previous one is used; global step, optimizer, LR schedule, random generators
    and the position in the epoch's batches are restored, so the run ends with the weights of an uninterrupted
    one on the same machine and thread count; another ``trainer.max_steps`` than the run started with is refused
    in one line, before any work). ``callbacks`` are added to the trainer's (pruning methods drive training through
    them). ``config`` is checked first (:func:`asrprune.training.config.check_config`).

    With ``init_checkpoint`` (fine-tuning, e.g. few-shot on a language added by ``asrprune add-language``), the
    architecture, token list, languages and CMVN come from that checkpoint and its weights are the starting point;
    ``config`` gives the optimizer, schedule, data and trainer settings. ``tokens_path`` is then only needed for
    subword models (the sentencepiece model that encodes the text).
    """
    check_config(config)
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = exp_dir / "checkpoints"
    trainer_conf = dict(config["trainer"])
    max_steps = trainer_conf.pop("max_steps")
    every = checkpoint_interval(trainer_conf)
    trainer_conf.pop("checkpoint_every_n_steps", None)
    done = finished_summary(exp_dir, max_steps)
    if done is not None:
        # A finished run is left as it is (its train_summary.json keeps the real run's timings).
        best = exp_dir / done.get("best_checkpoint", "checkpoints/best.ckpt")
        print(f"{exp_dir}: already trained to {done['global_step']} steps ({exp_dir / SUMMARY}); nothing to do")
        return best
    resume = resume_checkpoint(checkpoints)
    if resume is not None:
        check_same_max_steps(resume, max_steps, exp_dir)
    L.seed_everything(config["seed"], workers=True)
    train_utts, dev_utts = read_data_dirs(train_dirs), read_data_dirs(dev_dirs)
    cache = FeatureCache(config["data"]["feature_cache"], FbankConfig(config["model"]["num_mel_bins"]))
    if init_checkpoint is None:
        units = load_target_units(tokens_path)
        module = CTCModule(
            units.tokens, language_tokens(train_utts, units), config["model"], config["optim"], max_steps, units.kind
        )
        module.model.cmvn.set_stats(**cmvn_statistics(exp_dir / "cmvn.pt", train_utts, cache, config))
    else:
        module, units = _module_from_checkpoint(written_by_rank_zero(init_checkpoint), tokens_path, config["optim"],
                                                max_steps)

    datamodule = CTCDataModule(
        train_utts, dev_utts, units.encode, module.model, config["data"], cache, config["seed"]
    )
    # best.ckpt is overwritten in place (no best-v1.ckpt); step<N>.ckpt and last.ckpt follow the steps, not the score.
    best = ModelCheckpoint(dirpath=checkpoints, filename="best", monitor="val/per", mode="min",
                           enable_version_counter=False)
    stats = TrainingStats()
    trainer = L.Trainer(
        default_root_dir=exp_dir,
        max_steps=max_steps,
        check_val_every_n_epoch=None,
        precision=resolve_precision(trainer_conf.pop("precision"), trainer_conf.get("accelerator", "auto")),
        strategy=ddp_strategy_for(module, trainer_conf.pop("strategy")),
        logger=TensorBoardLogger(exp_dir, name="tensorboard", version=""),
        callbacks=[
            best, StepCheckpoint(checkpoints, every), stats, LearningRateMonitor(logging_interval="step"),
            TQDMProgressBar(refresh_rate=10), RandomStates(), *callbacks,
        ],
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # BucketBatchSampler shards batches across ranks itself
        **trainer_conf,
    )
    if trainer.is_global_zero:
        atomic_write_text(exp_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    started = time.time()
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    best_path = best_or_last(best, checkpoints)
    if trainer.is_global_zero:
        plot_training_curves(exp_dir / "tensorboard", exp_dir / "training_curves.png")
        summary = {
            "parameters": sum(p.numel() for p in module.parameters()),
            "languages": module.model.languages,
            "train_utterances": len(train_utts),
            "train_hours": round(sum(u.duration for u in train_utts) / 3600, 3),
            "global_step": trainer.global_step,
            "best_dev_per": float(best.best_model_score) if best.best_model_score is not None else None,
            "best_checkpoint": str(best_path.relative_to(exp_dir)),
            "wall_seconds_this_run": round(time.time() - started, 1),
            **stats.summary(),
            "precision": trainer.precision,
            "device": str(module.device),
            "provenance": provenance(RECIPE_LOAD, str(module.device), config, [best_path],
                                     {"train": [str(d) for d in train_dirs], "dev": [str(d) for d in dev_dirs]}),
        }
        atomic_write_json(exp_dir / SUMMARY, summary)  # last: its presence marks the run as finished
    return best_path


def run_cli(args: argparse.Namespace) -> None:
    config = load_config(args.config, args.set)
    if args.devices is not None:
        config["trainer"]["devices"] = args.devices
    if args.strategy is not None:
        config["trainer"]["strategy"] = args.strategy
    if args.tokens is None and args.init is None:
        raise ValueError("--tokens is required unless --init gives a checkpoint to start from")
    best = train(config, args.train, args.dev, args.tokens, args.exp, init_checkpoint=args.init)
    print(f"best checkpoint: {best}")


def register_cli(subparsers) -> None:
    """Add the ``train`` sub-command."""
    parser = subparsers.add_parser(
        "train",
        description=(
            "Train a phone-CTC conformer on one or more Kaldi data directories (any mix of languages). "
            "Writes checkpoints/best.ckpt (lowest dev PER), step<N>.ckpt every trainer.checkpoint_every_n_steps "
            "(default val_check_interval) and at the end (last.ckpt links to the newest), TensorBoard logs and, "
            "last, train_summary.json under --exp; running the same command again resumes from the newest readable "
            "checkpoint, or does nothing once the run finished. The config is checked completely first (unknown "
            "keys at any depth, value types). Multi-GPU/multi-node: set "
            "--devices/--strategy ddp (Lightning launches the processes; use torchrun or SLURM as usual)."
        ),
        epilog="example: asrprune train --config conf/train.yaml --train data/train_de data/train_fr "
        "--dev data/dev_de data/dev_fr --tokens data/phones.txt --exp exp/multi --set trainer.max_steps=2000",
    )
    add_train_config(parser, "YAML config (defaults are used for missing keys)")
    add_train_dev_dirs(parser, "dev data directories (checkpoint selection)")
    parser.add_argument(
        "--tokens", help="phone inventory (phones.txt) or sentencepiece model (*.model) for subwords"
    )
    parser.add_argument(
        "--init", help="fine-tune from this checkpoint (its architecture, tokens and languages; e.g. few-shot after "
        "asrprune add-language)"
    )
    add_exp(parser)
    parser.add_argument("--devices", type=int, help="override trainer.devices")
    parser.add_argument("--strategy", help="override trainer.strategy (e.g. ddp)")
    parser.set_defaults(func=run_cli)
