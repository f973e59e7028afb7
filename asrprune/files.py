"""Files that survive a kill: atomic writes, and checkpoint and JSON reading with one-line errors.

Every checkpoint, summary and marker is written to a temporary file in the *same* directory and then renamed over
its target (``os.replace``), so a reader sees the old file or the new one, never a partial one. Lightning's own
``_atomic_save`` writes through fsspec's transaction, which puts the temporary file in ``$TMPDIR``: when that is
another filesystem the final move is a copy, and a kill during it leaves a truncated checkpoint (issue 13).
Standard library and torch only: every layer of the package may use it.
"""
from __future__ import annotations

import errno
import io
import json
import os
import pickle
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch

# What torch.load raises for a zip archive that is not a whole checkpoint (a damaged member: RuntimeError from
# PytorchStreamReader, UnpicklingError, EOFError, ...); files that are no zip archive at all are caught before.
_UNREADABLE = (pickle.UnpicklingError, EOFError, RuntimeError, zipfile.BadZipFile, ValueError, OSError)
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
