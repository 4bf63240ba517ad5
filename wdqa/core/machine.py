"""What decides the bytes a CPU build trains: torch's version, the CPU, and the vector instruction
set torch dispatches its kernels to. Recorded with every tiny build so two builds that differ can
say which of these differ (issue 23: the same torch built other bytes on an AVX2 AMD EPYC than on
the machine that published suite version 4).
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

CPUINFO = Path("/proc/cpuinfo")


def build_machine() -> dict[str, str]:
    """torch's version, the CPU's model name and torch's CPU capability (AVX2, AVX512, ...)."""
    return {"torch": torch.__version__, "cpu": cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def cpu_name() -> str:
    try:
        for line in CPUINFO.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe(machine: dict[str, str] | None) -> str:
    """One phrase after "built with": "torch 2.13.0+cpu on AMD EPYC (AVX2)", or that it was not recorded."""
    if not machine:
        return "a torch and CPU it did not record"
    return f"torch {machine.get('torch', '?')} on {machine.get('cpu', '?')} ({machine.get('cpu_capability', '?')})"
