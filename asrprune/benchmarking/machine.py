"""A one-line description of the hardware a measurement ran on, stored beside every benchmark figure."""
from __future__ import annotations

import os
import platform

import torch


def machine_description(device: torch.device | str = "cpu") -> str:
    """E.g. ``'2 CPU cores (Intel Xeon ...), 23.4 GiB RAM'`` or ``'NVIDIA H100 80GB HBM3'`` for CUDA devices."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = ""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages * page_size / 2**30:.1f} GiB RAM"
    except (ValueError, OSError):
        pass
    return f"{os.cpu_count()} CPU cores ({cpu}){memory}"
