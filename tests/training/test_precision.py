"""``precision: auto`` resolves for the accelerator that runs the model, and the GPU or CPU it finds there."""
from __future__ import annotations

import pytest
import torch

from asrprune.training import train as train_module
from asrprune.training.train import resolve_precision


@pytest.fixture
def machine(monkeypatch):
    """Set what the machine reports: CUDA visible, the GPU's native bf16, the CPU's native bf16."""

    def set_machine(cuda: bool, gpu_bf16: bool = True, cpu_bf16: bool = False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: gpu_bf16)
        monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: cpu_bf16)

    return set_machine


def test_cpu_accelerator_ignores_a_visible_gpu(machine):
    machine(cuda=True, gpu_bf16=True, cpu_bf16=False)
    assert resolve_precision("auto", "cpu") == "32-true"


def test_cpu_with_native_bf16_trains_in_bf16(machine):
    machine(cuda=False, cpu_bf16=True)
    assert resolve_precision("auto", "auto") == "bf16-mixed"
    assert resolve_precision("auto", "cpu") == "bf16-mixed"


def test_gpu_without_native_bf16_uses_float16(machine):
    machine(cuda=True, gpu_bf16=False)
    assert resolve_precision("auto", "gpu") == "16-mixed"
    assert resolve_precision("auto", "auto") == "16-mixed"


def test_gpu_with_native_bf16(machine):
    machine(cuda=True, gpu_bf16=True)
    assert resolve_precision("auto", "cuda") == "bf16-mixed"


def test_explicit_precision_is_kept(machine):
    machine(cuda=True)
    assert resolve_precision("32-true", "gpu") == "32-true"
