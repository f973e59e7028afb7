"""Where a training step's time goes, the Lightning trainer against a plain PyTorch loop, and speed-up variants.

Three measurements of one training config on its real data pipeline (feature cache, speed perturbation, the
length-bucketed sampler, one loader worker), each written to the JSON file given by ``--out``:

- ``profile``: seconds per step split into data waiting, CMVN + SpecAugment, encoder, output layer, CTC loss,
  backward, gradient clipping and optimizer (forward hooks time the model's parts; the CPU executes synchronously so
  a wall clock around each part is its cost), the padding waste of the batches, and per validation interval the
  share of one validation pass and one checkpoint write;
- ``trainer``: the same steps (same initial weights, batches and optimizer) through Lightning's Trainer, configured
  as ``asrprune train`` configures it (TensorBoard logger, LR monitor, progress bar, gradient clipping), and through
  a plain loop, alternating, so the trainer's overhead is a ratio of two numbers taken side by side;
- ``ab``: variants of the plain loop (``--variants``), alternating within each round, each trained for
  ``--steps`` steps from the same initial weights and then scored on the dev sets (greedy PER), so a speed-up shows
  with its accuracy.

Variants (comma-separated names, combined with ``+``): ``fp32`` (float32), ``bf16`` (torch.autocast on the CPU or
GPU with bfloat16; ``ConformerCTC`` keeps the log-softmax and CTC in float32), ``compile`` (torch.compile of the
encoder, dynamic shapes), ``threads1`` (one intra-op thread instead of all cores), ``workers0`` (features loaded in
the training process instead of one loader worker), ``fused`` (fused AdamW; CUDA only), ``torchdropout``
(``torch.nn.Dropout``, whose CPU mask comes from ``bernoulli_``, instead of the model's
:class:`asrprune.model.dropout.UniformMaskDropout`), ``uttspeed`` (a speed-perturbation factor per utterance
instead of the config's, ``data.speed_perturb_per``), and config overrides ``KEY=VALUE`` as ``--set`` takes them
(e.g. ``bf16+model.subsampling_channels=64``; a value may hold neither ``+`` nor ``,``).

Example (the mini recipe's model and corpus, from recipes/mini after its stages 1-4):
    python ../../benchmarks/train_step_profile.py ab --config conf/train.yaml --tokens data/phones.txt \
        --train data/train_{de,fr,es,it} --dev data/dev_{de,fr,es,it} --variants fp32,bf16,bf16+compile \
        --steps 150 --rounds 2 --out ../../benchmarks/results/train_speed_variants.json
``--device cuda`` runs the same on a GPU (pinned memory, non-blocking copies, synchronised timers).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger

from asrprune.benchmarking.provenance import provenance
from asrprune.data.feature_cache import FeatureCache
from asrprune.data.features import FbankConfig
from asrprune.data.targets import load_target_units
from asrprune.decoding.greedy import greedy_decode
from asrprune.model.conformer_ctc import ctc_loss
from asrprune.model.dropout import UniformMaskDropout
from asrprune.scoring.error_rates import ErrorCounts, score_phones
from asrprune.training.config import load_config
from asrprune.training.datamodule import CTCDataModule
from asrprune.training.lightning_module import CTCModule
from asrprune.training.train import global_cmvn, language_tokens, read_data_dirs

FRAME_SECONDS = 0.01


class Setup:
    """The config, data module and a factory of identically initialised modules for one training config."""

    def __init__(self, args: argparse.Namespace, overrides: list[str] = ()):
        self.args = args
        self.config = load_config(args.config, [*args.set, *overrides])
        self.device = torch.device(args.device)
        self.units = load_target_units(args.tokens)
        self.train_utts, self.dev_utts = read_data_dirs(args.train), read_data_dirs(args.dev)
        data = self.config["data"]
        self.cache = FeatureCache(data["feature_cache"], FbankConfig(self.config["model"]["num_mel_bins"]))
        self.language_tokens = language_tokens(self.train_utts, self.units)
        mean, std = global_cmvn(self.train_utts, self.cache, min(500, data["cmvn_max_utterances"]), 0)
        self.cmvn = {"mean": mean, "std": std}

    def variant_config(self, overrides: list[str]) -> dict:
        """The config with a variant's ``KEY=VALUE`` overrides on top of ``--set``'s (the config itself if none)."""
        return load_config(self.args.config, [*self.args.set, *overrides]) if overrides else self.config

    def module(self, max_steps: int, config: dict | None = None) -> CTCModule:
        """A fresh module of ``config`` (default: the config), the same initial weights every call (seed 0)."""
        config = config or self.config
        torch.manual_seed(0)
        module = CTCModule(
            self.units.tokens, self.language_tokens, config["model"], config["optim"], max_steps, self.units.kind,
        )
        module.model.cmvn.set_stats(**self.cmvn)
        return module.to(self.device)

    def datamodule(self, module: CTCModule, workers: int | None = None, speed_per: str | None = None,
                   config: dict | None = None) -> CTCDataModule:
        data = dict((config or self.config)["data"])
        if workers is not None:
            data["num_workers"] = workers
        if speed_per is not None:
            data["speed_perturb_per"] = speed_per
        return CTCDataModule(
            self.train_utts, self.dev_utts, self.units.encode, module.model, data, self.cache, 0
        )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@contextlib.contextmanager
def _threads(count: int):
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class PhaseTimer:
    """Wall seconds per named phase; model parts are timed by forward pre-/post-hooks."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = {}
        self._started: dict[str, float] = {}

    def start(self, name: str) -> None:
        _sync(self.device)
        self._started[name] = time.perf_counter()

    def stop(self, name: str) -> None:
        _sync(self.device)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - self._started.pop(name)

    def hook(self, module: torch.nn.Module, name: str) -> None:
        module.register_forward_pre_hook(lambda *_: self.start(name))
        module.register_forward_hook(lambda *_: self.stop(name))


def _optimizer(module: CTCModule, fused: bool):
    optim = module.hparams.optim
    optimizer = torch.optim.AdamW(
        module.parameters(), lr=optim["lr"], weight_decay=optim["weight_decay"], fused=fused or None
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=optim["lr"], total_steps=module.hparams.max_steps, pct_start=optim["warmup_fraction"]
    )
    return optimizer, scheduler


def plain_loop(setup: Setup, module: CTCModule, loader, steps: int, bf16: bool, fused: bool = False,
               timer: PhaseTimer | None = None) -> dict:
    """Train ``steps`` steps as Lightning's automatic optimisation does (autocast, CTC, backward, clipping at the
    config's gradient_clip_val, AdamW, one-cycle LR); return per-step wall seconds and what the batches held."""
    device = setup.device
    optimizer, scheduler = _optimizer(module, fused)
    clip = setup.config["trainer"]["gradient_clip_val"]
    timer = timer or PhaseTimer(device)
    step_seconds, utterances, frames, padded = [], 0, 0, 0
    module.train()
    batches = iter(loader)
    for _ in range(steps):
        started = time.perf_counter()
        timer.start("data")
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        batch = batch.to(device)
        timer.stop("data")
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            log_probs, out_lengths = module(batch)
            timer.start("ctc")
            loss = ctc_loss(log_probs, out_lengths, batch.targets, batch.target_lengths)
            timer.stop("ctc")
        timer.start("backward")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        timer.stop("backward")
        timer.start("clip")
        torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
        timer.stop("clip")
        timer.start("optimizer")
        optimizer.step()
        scheduler.step()
        timer.stop("optimizer")
        _sync(device)
        step_seconds.append(time.perf_counter() - started)
        utterances += len(batch.uttids)
        frames += int(batch.feat_lengths.sum())
        padded += batch.feats.shape[0] * batch.feats.shape[1]
    return {"step_seconds": step_seconds, "utterances": utterances, "frames": frames, "padded_frames": padded,
            "phases": timer.seconds}


def dev_per(setup: Setup, module: CTCModule, bf16: bool) -> float:
    """Greedy PER (%) of ``module`` on the dev sets, pooled over languages."""
    module.eval()
    total = ErrorCounts()
    loader = setup.datamodule(module).val_dataloader()
    with torch.inference_mode(), torch.autocast(setup.device.type, dtype=torch.bfloat16, enabled=bf16):
        for batch in loader:
            batch = batch.to(setup.device)
            log_probs, out_lengths = module(batch)
            hyps = greedy_decode(log_probs, out_lengths)
            refs = [batch.targets[i, : batch.target_lengths[i]].tolist() for i in range(len(hyps))]
            total += score_phones([[str(t) for t in r] for r in refs], [[str(t) for t in h] for h in hyps])
    return round(total.error_rate, 2)


def _steady(seconds: list[float], warmup: int) -> float:
    """Mean seconds per step after the first ``warmup`` steps (loader start-up, allocator and compile warm-up)."""
    return statistics.fmean(seconds[warmup:])


# --- profile -----------------------------------------------------------------------------------------------------

def run_profile(setup: Setup) -> dict:
    args = setup.args
    bf16 = args.bf16
    module = setup.module(args.steps)
    timer = PhaseTimer(setup.device)
    model = module.model
    if model.specaug is not None:
        timer.hook(model.specaug, "cmvn_specaug")  # CMVN is one subtraction and division: counted here
    timer.hook(model.encoder, "encoder")
    timer.hook(model.output_layer, "output_layer")
    loader = setup.datamodule(module).train_dataloader()
    warm = plain_loop(setup, module, loader, args.warmup, bf16)  # loader start-up, allocator warm-up
    timer.seconds.clear()
    result = plain_loop(setup, module, loader, args.steps, bf16, timer=timer)
    steps = args.steps
    per_step = {name: round(seconds / steps, 4) for name, seconds in sorted(timer.seconds.items())}
    total = sum(result["step_seconds"]) / steps
    per_step["forward_rest"] = round(
        total - sum(per_step.values()), 4
    )  # CMVN without SpecAugment, the token restriction and log-softmax, Python between the hooks
    validation = time_validation(setup, module, bf16)
    checkpoint = time_checkpoint(module)
    ops = top_operators(setup, module, loader, bf16, args.ops_steps) if args.ops_steps else None
    interval = setup.config["trainer"]["val_check_interval"]
    train_seconds = interval * total
    return {
        "seconds_per_step": round(total, 4),
        "per_step_phase_seconds": per_step,
        "utterances_per_second": round(result["utterances"] / sum(result["step_seconds"]), 2),
        "mean_batch_utterances": round(result["utterances"] / steps, 1),
        "padding_waste": round(1 - result["frames"] / result["padded_frames"], 3),
        "warmup_steps": args.warmup,
        "warmup_seconds_per_step": round(_steady(warm["step_seconds"], 0), 4),
        "validation_seconds": validation,
        "checkpoint_seconds": checkpoint,
        "val_check_interval": interval,
        "validation_share_per_interval": round(validation / (train_seconds + validation + checkpoint), 3),
        "checkpoint_share_per_interval": round(checkpoint / (train_seconds + validation + checkpoint), 3),
        "data_item_ms": time_data_items(setup),
        **({"top_operators": ops} if ops else {}),
    }


def top_operators(setup: Setup, module: CTCModule, loader, bf16: bool, steps: int, count: int = 15) -> dict:
    """torch.profiler over ``steps`` more training steps: the ``count`` operators with the most self time (forward
    and backward together), as milliseconds per step and share of the profiled time. The profiler's own overhead
    inflates small operators; the ranking, not the sum, is the point."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if setup.device.type == "cuda" else [])
    with profile(activities=activities) as profiler:
        plain_loop(setup, module, loader, steps, bf16)
    events = profiler.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:count]
    return {"steps": steps, "self_cpu_ms_per_step": {e.key: round(e.self_cpu_time_total / 1e3 / steps, 1) for e in top},
            "share": {e.key: round(e.self_cpu_time_total / total, 3) for e in top}}


def time_validation(setup: Setup, module: CTCModule, bf16: bool) -> float:
    started = time.perf_counter()
    dev_per(setup, module, bf16)
    module.train()
    return round(time.perf_counter() - started, 2)


def time_checkpoint(module: CTCModule) -> float:
    """Seconds to write the module's and an AdamW state's tensors (what a Lightning checkpoint holds)."""
    optimizer, _ = _optimizer(module, False)
    state = {"state_dict": module.state_dict(), "optimizer": optimizer.state_dict()}
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        torch.save(state, Path(folder) / "last.ckpt")
        return round(time.perf_counter() - started, 3)


def time_data_items(setup: Setup, items: int = 200) -> dict:
    """Milliseconds per utterance of reading cached features, and of extracting them from audio (no cache, with
    speed perturbation as the first epoch of an uncached run does), measured in this process."""
    utts = setup.train_utts[:items]
    started = time.perf_counter()
    for utt in utts:
        setup.cache.features(utt, 1.0)
    cached = (time.perf_counter() - started) / len(utts)
    uncached = FeatureCache(None, setup.cache.fbank)
    started = time.perf_counter()
    for utt in utts[:50]:
        uncached.features(utt, 1.1)
    extracted = (time.perf_counter() - started) / min(50, len(utts))
    return {"cache_read": round(cached * 1e3, 2), "extract_with_speed_perturbation": round(extracted * 1e3, 2)}


# --- trainer vs plain loop ---------------------------------------------------------------------------------------

class StepClock(L.Callback):
    """Wall seconds between consecutive batch starts (data waiting included), as the plain loop measures them."""

    def __init__(self):
        self.starts: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module) -> None:
        self.starts.append(time.perf_counter())

    def step_seconds(self) -> list[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:])]


def lightning_loop(setup: Setup, steps: int, bf16: bool, folder: Path) -> list[float]:
    """``steps`` steps through Lightning's Trainer with asrprune train's callbacks, without validation."""
    module = setup.module(steps)
    clock = StepClock()
    trainer = L.Trainer(
        default_root_dir=folder,
        max_steps=steps,
        accelerator=setup.device.type,
        devices=1,
        precision="bf16-mixed" if bf16 else "32-true",
        gradient_clip_val=setup.config["trainer"]["gradient_clip_val"],
        log_every_n_steps=setup.config["trainer"]["log_every_n_steps"],
        logger=TensorBoardLogger(folder, name="tensorboard", version=""),
        callbacks=[clock, LearningRateMonitor(logging_interval="step"), TQDMProgressBar(refresh_rate=10)],
        limit_val_batches=0,
        enable_checkpointing=False,
        use_distributed_sampler=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=setup.datamodule(module))
    return clock.step_seconds()


def run_trainer(setup: Setup) -> dict:
    args = setup.args
    rounds = {"lightning": [], "plain": []}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as folder:
            rounds["lightning"].append(_steady(lightning_loop(setup, args.steps, args.bf16, Path(folder)), args.warmup))
        module = setup.module(args.steps)
        loader = setup.datamodule(module).train_dataloader()
        rounds["plain"].append(_steady(plain_loop(setup, module, loader, args.steps, args.bf16)["step_seconds"],
                                       args.warmup))
    lightning, plain = statistics.fmean(rounds["lightning"]), statistics.fmean(rounds["plain"])
    return {
        "seconds_per_step_by_round": {k: [round(v, 4) for v in vs] for k, vs in rounds.items()},
        "lightning_seconds_per_step": round(lightning, 4),
        "plain_seconds_per_step": round(plain, 4),
        "lightning_overhead": round(lightning / plain - 1, 4),
    }


# --- A/B variants ------------------------------------------------------------------------------------------------

VARIANT_PARTS = {"fp32", "bf16", "compile", "threads1", "workers0", "fused", "torchdropout", "uttspeed"}


def use_torch_dropout(module: torch.nn.Module) -> None:
    """Put ``torch.nn.Dropout`` back where the model uses :class:`UniformMaskDropout` (the variant before it)."""
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, UniformMaskDropout):
                setattr(parent, name, torch.nn.Dropout(child.p))


def run_variant(setup: Setup, name: str) -> dict:
    parts = set(name.split("+"))
    overrides = sorted(part for part in parts if "=" in part)
    unknown = parts - VARIANT_PARTS - set(overrides)
    if unknown:
        raise SystemExit(f"--variants: unknown part(s) {sorted(unknown)} in {name!r}; known: {sorted(VARIANT_PARTS)} "
                         f"and config overrides KEY=VALUE")
    bf16 = "bf16" in parts
    config = setup.variant_config(overrides)
    module = setup.module(setup.args.steps, config)
    if "torchdropout" in parts:
        use_torch_dropout(module.model)
    if "compile" in parts:
        module.model.encoder = torch.compile(module.model.encoder, dynamic=True)
    loader = setup.datamodule(module, workers=0 if "workers0" in parts else None,
                              speed_per="utterance" if "uttspeed" in parts else None, config=config).train_dataloader()
    threads = 1 if "threads1" in parts else torch.get_num_threads()
    with _threads(threads):
        result = plain_loop(setup, module, loader, setup.args.steps, bf16, fused="fused" in parts)
        per = dev_per(setup, module, bf16)
    seconds = _steady(result["step_seconds"], setup.args.warmup)
    return {
        "seconds_per_step": round(seconds, 4),
        "first_steps_seconds": round(sum(result["step_seconds"][: setup.args.warmup]), 2),
        "utterances_per_second": round(result["utterances"] / sum(result["step_seconds"]), 2),
        "padding_waste": round(1 - result["frames"] / result["padded_frames"], 3),
        "dev_per": per,
    }


def run_ab(setup: Setup) -> dict:
    variants = setup.args.variants.split(",")
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for round_index in range(setup.args.rounds):
        order = variants if round_index % 2 == 0 else variants[::-1]  # alternate, and swap who goes first
        for variant in order:
            runs[variant].append(run_variant(setup, variant))
            print(f"round {round_index + 1} {variant}: {runs[variant][-1]}", flush=True)
    base = statistics.fmean(r["seconds_per_step"] for r in runs[variants[0]])
    summary = {}
    for variant, results in runs.items():
        seconds = statistics.fmean(r["seconds_per_step"] for r in results)
        summary[variant] = {
            "seconds_per_step": round(seconds, 4),
            "speedup_vs_first": round(base / seconds, 3),
            "dev_per": [r["dev_per"] for r in results],
            "rounds": results,
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("profile", "trainer", "ab"))
    parser.add_argument("--config", required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--train", nargs="+", required=True)
    parser.add_argument("--dev", nargs="+", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="first steps of a run left out of its mean")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (trainer, ab)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (profile, trainer)")
    parser.add_argument("--ops-steps", type=int, default=0,
                        help="profile: also run this many steps under torch.profiler and record the top operators")
    parser.add_argument("--variants", default="fp32,bf16", help="ab: comma-separated variants (see above)")
    parser.add_argument("--other-load", default="not stated", help="what else ran on the machine (recorded)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--out", required=True, help="JSON output file")
    args = parser.parse_args()
    setup = Setup(args)
    started = time.time()
    result = {"profile": run_profile, "trainer": run_trainer, "ab": run_ab}[args.what](setup)
    record = {
        "what": args.what,
        "result": result,
        "wall_seconds": round(time.time() - started, 1),
        "steps": args.steps,
        "rounds": args.rounds,
        "bf16": args.bf16,
        "threads": torch.get_num_threads(),
        "provenance": provenance(args.other_load, args.device, setup.config, data={"train": args.train,
                                                                                    "dev": args.dev}),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
