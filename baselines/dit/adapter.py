"""The DIT adapter A: trainable LoRA factors on every target linear layer, and its files.

Owns initialisation (PEFT's: A random, B zero, so training starts at M ⊕ Δ exactly), the shared
per-row terms that put A on top of every batch row's own diff, and conversion to and from a
`WeightDiff` (kind lora) stored with `write_shard` next to a JSON record. No training loop here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...core.lora import MultiDiffLinear, RowAdapter, RowDense
from ...core.suite import SuiteError, atomic_write_text, read_shard, write_shard
from ...core.types import LoraFactors, WeightDiff

ADAPTER_FILE = "adapter.safetensors"
RECORD_FILE = "dit.json"


class DitAdapter(nn.Module):
    """One rank-r LoRA per wrapped module; `scale` = alpha / r, applied by folding it into B."""

    def __init__(self, wrapped: dict[str, MultiDiffLinear], targets: tuple[str, ...], rank: int, scale: float, seed: int = 0) -> None:
        super().__init__()
        self.rank, self.scale = rank, scale
        self.module_names = [n for n in wrapped if n.split(".")[-1] in targets]
        if not self.module_names:
            raise ValueError(f"the base model has no linear layers named {list(targets)} to put a DIT adapter on")
        g = torch.Generator().manual_seed(seed)
        self.A = nn.ParameterList()
        self.B = nn.ParameterList()
        for name in self.module_names:
            d_out, d_in = wrapped[name].base.weight.shape
            device = wrapped[name].base.weight.device
            a = torch.empty(rank, d_in)
            # PEFT's default: kaiming_uniform_(a=sqrt(5)) on A, zeros on B.
            bound = 1.0 / math.sqrt(d_in)
            a.uniform_(-bound, bound, generator=g)
            self.A.append(nn.Parameter(a.to(device)))  # [rank, d_in]
            self.B.append(nn.Parameter(torch.zeros(d_out, rank, device=device)))  # [d_out, rank]

    def shared_terms(self, batch: int) -> dict[str, list[RowAdapter | RowDense]]:
        """A on every one of `batch` rows, differentiable (no copy of the parameters)."""
        terms: dict[str, list[RowAdapter | RowDense]] = {}
        for name, a, b in zip(self.module_names, self.A, self.B, strict=True):
            row_task = torch.zeros(batch, dtype=torch.long, device=a.device)
            terms[name] = [RowAdapter(a.unsqueeze(0), (b * self.scale).unsqueeze(0), row_task)]
        return terms

    def to_weight_diff(self, diff_id: str = "dit") -> WeightDiff:
        lora = {
            name: LoraFactors(A=a.detach().float().cpu().clone(), B=b.detach().float().cpu().clone(), scale=self.scale)
            for name, a, b in zip(self.module_names, self.A, self.B, strict=True)
        }
        return WeightDiff(diff_id=diff_id, kind="lora", lora=lora)

    def load_weight_diff(self, adapter: WeightDiff) -> None:
        """Copy a saved adapter's factors into this one (same modules and rank)."""
        missing = [n for n in self.module_names if n not in adapter.lora]
        if missing:
            raise ValueError(f"adapter {adapter.diff_id} lacks modules {missing[:3]} that this model has")
        with torch.no_grad():
            for name, a, b in zip(self.module_names, self.A, self.B, strict=True):
                f = adapter.lora[name]
                a.copy_(f.A)
                b.copy_(f.B.float() * f.scale / self.scale)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def save_adapter(out_dir: str | Path, adapter: WeightDiff, record: dict[str, Any]) -> Path:
    """Write `adapter.safetensors` (the WeightDiff) and `dit.json` (config and training record)."""
    out_dir = Path(out_dir)
    write_shard(out_dir / ADAPTER_FILE, [adapter])
    atomic_write_text(out_dir / RECORD_FILE, json.dumps(record, indent=2, sort_keys=True))
    return out_dir / ADAPTER_FILE


def load_adapter(path: str | Path) -> WeightDiff:
    """A trained DIT adapter from its folder or its `adapter.safetensors` file."""
    path = Path(path)
    file = path / ADAPTER_FILE if path.is_dir() else path
    if not file.exists():
        raise SuiteError(
            f"no DIT adapter at {file}; train one with `wdqa baselines train-dit --suite tiny --split train --out DIR`"
        )
    diffs = read_shard(file)
    if len(diffs) != 1:
        raise SuiteError(f"{file} holds {len(diffs)} diffs; a DIT adapter file holds exactly one")
    adapter = next(iter(diffs.values()))
    if adapter.kind != "lora":
        raise SuiteError(f"{file}: a DIT adapter must be a LoRA, found kind {adapter.kind}")
    return adapter


def load_record(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    file = folder / RECORD_FILE
    return json.loads(file.read_text()) if file.exists() else {}
