"""Files that survive a kill: atomic writes, checkpoint reading with one-line errors, and the resume fallback.

Every checkpoint, summary and marker is written to a temporary file in the *same* directory and then renamed over
its target (``os.replace``), so a reader sees the old file or the new one, never a partial one. Lightning's own
``_atomic_save`` writes through fsspec's transaction, which puts the temporary file in ``$TMPDIR``: when that is
another filesystem the final move is a copy, and a kill during it leaves a truncated checkpoint (issue 13).
"""
from __future__ import annotations

import errno
import io
import json
import os
import pickle
import random
import re
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

# What torch.load raises for a zip archive that is not a whole checkpoint (a damaged member: RuntimeError from
# PytorchStreamReader, UnpicklingError, EOFError, ...); files that are no zip archive at all are caught before.
_UNREADABLE = (pickle.UnpicklingError, EOFError, RuntimeError, zipfile.BadZipFile, ValueError, OSError)
STEP_FILE = re.compile(r"^step(\d+)\.ckpt$")
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # os.umask is the only way to read the process's umask: set, then restore it


def warn(line: str) -> None:
    """Print one warning line on stderr."""
    print(line, file=sys.stderr, flush=True)


class CorruptCheckpoint(ValueError):
    """A checkpoint file that exists but cannot be read: ``path`` and ``detail`` (size and what torch said); the
    message names the file and what to do."""

    def __init__(self, path: Path, detail: str):
        super().__init__(f"{path}: {detail}; use another checkpoint or delete this one")
        self.path, self.detail = path, detail


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, flush it to disk, then rename it to ``path``.

    On any failure the temporary file is removed and ``path`` keeps its previous content; an ``OSError`` (a full
    disk, errno 28) is re-raised naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; the file gets the permissions open() would give
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except OSError as error:
        Path(temp).unlink(missing_ok=True)
        hint = "; free some space and re-run the same command" if error.errno == errno.ENOSPC else ""
        raise OSError(error.errno, f"{path}: could not write ({error.strerror or error}){hint}") from error
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str | Path, value: Any) -> None:
    """Write ``value`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(value, indent=2) + "\n")


def atomic_torch_save(value: Any, path: str | Path) -> None:
    """``torch.save(value, path)`` atomically. Serialised in memory first (as Lightning does): torch's zip writer
    turns a failed file write (a full disk) into a RuntimeError that no longer says what happened."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    atomic_write(path, lambda f: f.write(buffer.getbuffer()))


def read_checkpoint(path: str | Path, map_location: Any = "cpu", mmap: bool = False) -> dict:
    """``torch.load`` of a checkpoint (not restricted to weights; ``mmap`` maps it instead of reading it, enough to
    check that it is whole); an unreadable file raises :class:`CorruptCheckpoint` naming it, a missing one
    ``FileNotFoundError`` naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, f"{path}: checkpoint not found")
    size = path.stat().st_size
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; its directory is at the end
        raise CorruptCheckpoint(path, f"not a readable checkpoint: {size} bytes, not the zip archive torch.save "
                                "writes (empty, truncated or another kind of file)")
    try:
        return torch.load(path, map_location=map_location, weights_only=False, mmap=mmap)
    except _UNREADABLE as error:
        reason = str(error).split(". ")[0].splitlines()[0] if str(error) else ""
        raise CorruptCheckpoint(path, f"not a readable checkpoint: {size} bytes ({type(error).__name__}: {reason})"
                                ) from error


def read_json(path: str | Path) -> dict | None:
    """The JSON object in ``path``, or None if the file is missing or unreadable (then it does not count)."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


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
