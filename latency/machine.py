"""A one-line description of the machine a measurement ran on (CPU model and cores, GPU)."""
from __future__ import annotations

import os
from pathlib import Path

import torch


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``"unknown CPU"`` where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def describe_machine(device: str = "cpu") -> str:
    """E.g. ``"2-core CPU (AMD EPYC)"`` or ``"NVIDIA H200 GPU; 16-core CPU (...)"``."""
    cpu = f"{os.cpu_count()}-core CPU ({cpu_model()})"
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(torch.device(device))} GPU; {cpu}"
    return cpu
