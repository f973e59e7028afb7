"""The provenance record stored with every result: which code, command, config, model, data and machine made it.

A result file is only quotable if a reader can re-make it: the commit (and whether the tree had uncommitted
changes), the exact command line, the config, a hash of the checkpoint it read, the data it ran on, the machine, the
date, and what else was running on the machine while it was timed (given by the caller; a benchmark cannot see it).
"""
from __future__ import annotations

import datetime
import hashlib
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import torch

from asrprune.benchmarking.machine import machine_description

REPO = Path(__file__).resolve().parents[2]
# What a training or decoding command records as "other_load": it cannot see other jobs on the machine; a
# benchmark that times it is told by whoever runs it (--other-load).
RECIPE_LOAD = "not recorded by the command (it cannot see other jobs)"


RESULTS_DIR = "benchmarks/results"


def git_commit(repo: Path = REPO) -> dict:
    """``{"commit": sha, "dirty": bool}`` of ``repo``, or ``{"commit": None}`` outside a git checkout; ``dirty``:
    tracked files outside ``benchmarks/results/`` differ from the commit."""
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        # result files a benchmark has just rewritten are no code change: benchmarks/results/ does not count
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--",
                                 ".", f":!{RESULTS_DIR}"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None}
    return {"commit": sha, "dirty": bool(status.strip())}


def file_sha256(path: str | Path, length: int = 16) -> str:
    """First ``length`` hex digits of the SHA-256 of a file (checkpoints: which weights a result came from)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def provenance(other_load: str, device: str = "cpu", config: dict | None = None,
               checkpoints: list[str | Path] = (), data: dict | list | None = None) -> dict:
    """The record: commit, command, date, machine, versions, and the given config, checkpoint hashes and data."""
    record = {
        **git_commit(),
        "command": shlex.join(sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_description(device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "other_load": other_load,
    }
    if config is not None:
        record["config"] = config
    if checkpoints:
        record["checkpoints"] = {str(path): file_sha256(path) for path in checkpoints}
    if data is not None:
        record["data"] = data
    return record


def provenance_markdown(record: dict) -> str:
    """One markdown line of a provenance record, for result files that are tables (their .json-less twins)."""
    dirty = " with uncommitted changes" if record.get("dirty") else ""
    return (f"Provenance: commit `{record['commit']}`{dirty}, command `{record['command']}`, {record['date']}, "
            f"{record['machine']}, torch {record['torch']}; other load: {record['other_load']}.")
