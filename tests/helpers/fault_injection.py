"""Run ``python -m MODULE ARGS`` with one checkpoint write stopped halfway, so a test can SIGKILL it there.

Usage: ``python tests/helpers/fault_injection.py NAME SIGNAL_FILE MODULE ARGS...``. The first checkpoint write
(:func:`asrprune.files.atomic_torch_save`, patched before MODULE imports it) to a file called NAME writes the first
half of the checkpoint's bytes to its temporary file, creates ``SIGNAL_FILE`` (its content: the checkpoint's path)
and sleeps until killed. Used by tests/training/test_faults.py and benchmarks/fault_table.py.
"""
from __future__ import annotations

import io
import runpy
import sys
import time
from pathlib import Path

import torch

from asrprune import files


def pause_in_write(name: str, signal_file: Path) -> None:
    """Replace ``files.atomic_torch_save`` by one that stalls halfway through the write of file ``name``."""
    original = files.atomic_torch_save

    def stalling_save(value, path) -> None:
        if Path(path).name != name:
            return original(value, path)
        buffer = io.BytesIO()
        torch.save(value, buffer)

        def write_half(f) -> None:
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            f.flush()
            signal_file.write_text(str(path), encoding="utf-8")
            time.sleep(600)

        files.atomic_write(path, write_half)

    files.atomic_torch_save = stalling_save


if __name__ == "__main__":
    pause_in_write(sys.argv[1], Path(sys.argv[2]))
    module = sys.argv[3]
    sys.argv = [module, *sys.argv[4:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
