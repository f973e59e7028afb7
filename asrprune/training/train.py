"""``asrprune train``: train the multilingual CTC conformer with Lightning (resumable, DDP-ready)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Sequence

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from tqdm import tqdm

from asrprune.data.feature_cache import FeatureCache
from asrprune.data.features import CMVNAccumulator, FbankConfig
from asrprune.data.kaldi_dir import Utterance, read_data_dir
from asrprune.data.targets import PHONE, TargetUnits, load_target_units
from asrprune.training.config import load_config
from asrprune.training.curves import plot_training_curves
from asrprune.training.datamodule import CTCDataModule
from asrprune.training.lightning_module import CTCModule
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
    """A module with ``checkpoint``'s architecture, tokens and weights, and a new optimizer/schedule setting."""
    init = CTCModule.load_from_checkpoint(checkpoint, map_location="cpu")
    hparams = init.hparams
    if hparams.target_unit == PHONE:
        units = TargetUnits(PHONE, hparams.tokens)
    else:
        units = load_target_units(tokens_path) if tokens_path else None
        if units is None or units.tokens != list(hparams.tokens):
            raise ValueError(f"{checkpoint}: a subword model needs --tokens with its own sentencepiece model")
    module = CTCModule(hparams.tokens, hparams.language_tokens, hparams.model, optim, max_steps, hparams.target_unit)
    module.load_state_dict(init.state_dict())
    return module, units


def _finished(last_checkpoint: Path, max_steps: int) -> bool:
    """Whether ``last_checkpoint`` exists and was saved at ``max_steps`` or later."""
    if not last_checkpoint.exists():
        return False
    state = torch.load(last_checkpoint, map_location="cpu", weights_only=False, mmap=True)
    return state.get("global_step", 0) >= max_steps


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matrix products in hardware (AVX512-BF16 or AMX), where bf16 autocast pays."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(config_precision: str, accelerator: str = "auto") -> str:
    """Lightning precision for ``precision: auto`` on the accelerator that will actually run the model.

    - CUDA: ``bf16-mixed`` where the GPU computes bf16 natively (Ampere and newer), else ``16-mixed`` (V100, T4);
    - CPU: ``bf16-mixed`` where the processor has AVX512-BF16 or AMX (training the mini model 1.7x faster,
      benchmarks/results/train_speed_ab.md, with the same dev PER), else ``32-true``.
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

    Writes ``exp_dir/checkpoints/{best,last}.ckpt``, ``exp_dir/tensorboard/``, ``exp_dir/config.yaml``,
    ``exp_dir/cmvn.pt``, ``exp_dir/train_summary.json`` and ``exp_dir/training_curves.png``. Re-running with the
    same ``exp_dir`` resumes from ``last.ckpt`` (global step, optimizer and LR schedule are restored; the current
    epoch restarts). ``callbacks`` are added to the trainer's (pruning methods drive training through them).

    With ``init_checkpoint`` (fine-tuning, e.g. few-shot on a language added by ``asrprune add-language``), the
    architecture, token list, languages and CMVN come from that checkpoint and its weights are the starting point;
    ``config`` gives the optimizer, schedule, data and trainer settings. ``tokens_path`` is then only needed for
    subword models (the sentencepiece model that encodes the text).
    """
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = exp_dir / "checkpoints"
    last = checkpoints / "last.ckpt"
    if _finished(last, config["trainer"]["max_steps"]):
        # A finished run is left as it is (its train_summary.json keeps the real run's timings).
        print(f"{exp_dir}: already trained to {config['trainer']['max_steps']} steps ({last}); nothing to do")
        return checkpoints / "best.ckpt"
    L.seed_everything(config["seed"], workers=True)
    train_utts, dev_utts = read_data_dirs(train_dirs), read_data_dirs(dev_dirs)
    trainer_conf = dict(config["trainer"])
    max_steps = trainer_conf.pop("max_steps")
    cache = FeatureCache(config["data"]["feature_cache"], FbankConfig(config["model"]["num_mel_bins"]))
    if init_checkpoint is None:
        units = load_target_units(tokens_path)
        module = CTCModule(
            units.tokens, language_tokens(train_utts, units), config["model"], config["optim"], max_steps, units.kind
        )
        cmvn_path = exp_dir / "cmvn.pt"
        if not cmvn_path.exists():
            mean, std = global_cmvn(train_utts, cache, config["data"]["cmvn_max_utterances"], config["seed"])
            torch.save({"mean": mean, "std": std}, cmvn_path)
        module.model.cmvn.set_stats(**torch.load(cmvn_path))
    else:
        module, units = _module_from_checkpoint(init_checkpoint, tokens_path, config["optim"], max_steps)

    datamodule = CTCDataModule(
        train_utts, dev_utts, units.encode, module.model.languages, config["data"], cache, config["seed"]
    )
    best = ModelCheckpoint(dirpath=checkpoints, filename="best", monitor="val/per", mode="min", save_last=True)
    stats = TrainingStats()
    trainer = L.Trainer(
        default_root_dir=exp_dir,
        max_steps=max_steps,
        check_val_every_n_epoch=None,
        precision=resolve_precision(trainer_conf.pop("precision"), trainer_conf.get("accelerator", "auto")),
        logger=TensorBoardLogger(exp_dir, name="tensorboard", version=""),
        callbacks=[
            best, stats, LearningRateMonitor(logging_interval="step"), TQDMProgressBar(refresh_rate=10), *callbacks
        ],
        use_distributed_sampler=False,  # BucketBatchSampler shards batches across ranks itself
        **trainer_conf,
    )
    (exp_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    started = time.time()
    trainer.fit(module, datamodule=datamodule, ckpt_path=last if last.exists() else None)
    if trainer.is_global_zero:
        summary = {
            "parameters": sum(p.numel() for p in module.parameters()),
            "languages": module.model.languages,
            "train_utterances": len(train_utts),
            "train_hours": round(sum(u.duration for u in train_utts) / 3600, 3),
            "global_step": trainer.global_step,
            "best_dev_per": float(best.best_model_score) if best.best_model_score is not None else None,
            "wall_seconds_this_run": round(time.time() - started, 1),
            **stats.summary(),
            "precision": trainer.precision,
            "device": str(module.device),
        }
        (exp_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        plot_training_curves(exp_dir / "tensorboard", exp_dir / "training_curves.png")
    return checkpoints / "best.ckpt"


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
    parser = subparsers.add_parser(
        "train",
        help="train (or resume) a multilingual phone-CTC conformer",
        description=(
            "Train a phone-CTC conformer on one or more Kaldi data directories (any mix of languages). "
            "Writes checkpoints/{best,last}.ckpt, TensorBoard logs and train_summary.json under --exp; "
            "running the same command again resumes from last.ckpt. Multi-GPU/multi-node: set "
            "--devices/--strategy ddp (Lightning launches the processes; use torchrun or SLURM as usual)."
        ),
        epilog="example: asrprune train --config conf/train.yaml --train data/train_de data/train_fr "
        "--dev data/dev_de data/dev_fr --tokens data/phones.txt --exp exp/multi --set trainer.max_steps=2000",
    )
    parser.add_argument("--config", help="YAML config (defaults are used for missing keys)")
    parser.add_argument("--train", nargs="+", required=True, help="training data directories")
    parser.add_argument("--dev", nargs="+", required=True, help="dev data directories (checkpoint selection)")
    parser.add_argument(
        "--tokens", help="phone inventory (phones.txt) or sentencepiece model (*.model) for subwords"
    )
    parser.add_argument(
        "--init", help="fine-tune from this checkpoint (its architecture, tokens and languages; e.g. few-shot after "
        "asrprune add-language)"
    )
    parser.add_argument("--exp", required=True, help="experiment directory")
    parser.add_argument("--devices", type=int, help="override trainer.devices")
    parser.add_argument("--strategy", help="override trainer.strategy (e.g. ddp)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. optim.lr=1e-3"
    )
    parser.set_defaults(func=run_cli)
