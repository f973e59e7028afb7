"""Lightning's side of files that survive a kill: atomic checkpoint I/O for the Trainer, step checkpoints, saved
random states, and the resume fallback to the newest readable checkpoint (the atomic writes and the one-line read
errors are :mod:`asrprune.files`)."""
from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from asrprune.files import CorruptCheckpoint, atomic_torch_save, read_checkpoint, warn

STEP_FILE = re.compile(r"^step(\d+)\.ckpt$")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O whose writes are atomic in the target directory and whose read errors name the
    file (:func:`atomic_torch_save`, :func:`read_checkpoint`)."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO.save_checkpoint takes no storage_options")
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return read_checkpoint(path, map_location or "cpu")


class StepCheckpoint(ModelCheckpoint):
    """``step<N>.ckpt`` every ``every_n_train_steps`` steps and at the end of training, whatever the dev score;
    the two newest are kept (the older one is the fallback when the newest is unreadable) and ``last.ckpt`` links
    to the newest. Lightning's ``ModelCheckpoint`` does the rotation; this subclass adds the save at the end of
    training (Lightning saves ``last`` there only if nothing was saved before)."""

    def __init__(self, dirpath: str | Path, every_n_train_steps: int):
        super().__init__(
            dirpath=dirpath, filename="step{step:07d}", monitor="step", mode="max", save_top_k=2, save_last="link",
            every_n_train_steps=every_n_train_steps, auto_insert_metric_name=False, enable_version_counter=False,
        )

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.global_step != self._last_global_step_saved and not trainer.sanity_checking:
            candidates = self._monitor_candidates(trainer)
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)


class RandomStates(Callback):
    """Saves the random generators' states with every checkpoint and restores them when training resumes, so that
    dropout after a resume draws what the uninterrupted run drew (Lightning saves none of them; ``seed_everything``
    only seeds the start): torch's CPU generator, the current CUDA device's, Python's ``random`` and NumPy's global
    one (as tensors and ints, so the checkpoint still loads with ``weights_only=True``).

    The states are restored at ``on_train_start``, after the sanity check and after the loaders were set up, just
    before the first resumed step. The states saved are those right after the checkpoint's step, which is where the
    uninterrupted run's next step starts from too: between two steps nothing draws from these generators
    (validation is in eval mode, and the loaders draw from their own generators and seed their batches' augmentation
    themselves, :mod:`asrprune.training.datamodule`).
    """

    def __init__(self) -> None:
        self._to_restore: dict | None = None

    def state_dict(self) -> dict:
        _, keys, position, has_gauss, gauss = np.random.get_state()
        state = {"torch": torch.get_rng_state(), "python": random.getstate(),
                 "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                           "has_gauss": int(has_gauss), "gauss": float(gauss)}}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state()
        return state

    def load_state_dict(self, state: dict) -> None:
        self._to_restore = state

    def on_train_start(self, trainer, pl_module) -> None:
        state, self._to_restore = self._to_restore, None
        if state is None:
            return
        torch.set_rng_state(state["torch"])
        version, internal, gauss_next = state["python"]
        random.setstate((version, tuple(internal), gauss_next))
        numpy = state["numpy"]
        np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                             numpy["has_gauss"], numpy["gauss"]))
        if "cuda" in state and pl_module.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], pl_module.device)


def resume_candidates(checkpoints: Path) -> list[Path]:
    """Checkpoints a run may resume from, newest first: ``last.ckpt`` (or what it links to), then ``step<N>.ckpt``
    by decreasing N; each file once."""
    steps = sorted(
        (p for p in checkpoints.glob("step*.ckpt") if STEP_FILE.match(p.name)),
        key=lambda p: int(STEP_FILE.match(p.name).group(1)), reverse=True,
    )
    last = checkpoints / "last.ckpt"
    if last.is_symlink():  # name the file it links to (a step<N>.ckpt), as reports and Lightning will
        last = checkpoints / os.readlink(last)
    ordered = ([last] if last.exists() else []) + steps
    seen: set[Path] = set()
    return [p for p in ordered if not (p.resolve() in seen or seen.add(p.resolve()))]


def newest_readable_checkpoint(checkpoints: Path, report: Callable[[str], None] = warn) -> Path | None:
    """The newest checkpoint under ``checkpoints`` that loads; each unreadable newer one is reported in one line
    through ``report`` (the run falls back to the next). None when there is none."""
    for path in resume_candidates(checkpoints):
        try:
            read_checkpoint(path, mmap=True)
        except CorruptCheckpoint as error:
            report(f"warning: {error.path}: {error.detail}; resuming from the previous checkpoint instead")
            continue
        return path
    return None
