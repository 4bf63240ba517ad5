"""Full fine-tunes as dense deltas, trained many at a time: each task's ΔW is a [tasks, d_out, d_in]
parameter applied per batch row (`wdqa.core.lora.RowDense`), the base stays frozen.

Owns the dense parametrisation only; the data, batches and loss (CE on positives + KL to the base on
negatives) are the LoRA trainer's (`trainer.py`), so both kinds of diff learn from the same objective.
Dense deltas are trained `DenseConfig.tasks_per_batch` at a time: RowDense runs one matmul per task on
that task's rows (no per-row copy), but each task holds its own delta, gradient and Adam state (four
copies of the target weights), so on a multi-billion-parameter base use a small tasks_per_batch.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ...core.lora import TARGET_MODULES, RowDense, applied, install_multi_diff
from ...core.types import WeightDiff
from .trainer import (  # the LoRA trainer's batching and loss, shared so the objectives are identical
    DiffTask,
    TrainConfig,
    TrainResult,
    _assistant_logprobs,
    _base_logprobs,
    _Encoder,
    _per_task_loss,
    _sample_batch,
    _task_seed,
)


@dataclass(frozen=True)
class DenseConfig:
    """Which weights a full fine-tune touches: every target module, or only some layers (the subset variant)."""

    targets: tuple[str, ...] = TARGET_MODULES
    layers: tuple[int, ...] | None = None
    tasks_per_batch: int = 8

    def selects(self, module: str) -> bool:
        if module.split(".")[-1] not in self.targets:
            return False
        return self.layers is None or any(f".layers.{i}." in module for i in self.layers)


def train_dense_diffs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    tasks: Sequence[DiffTask],
    dense: DenseConfig = DenseConfig(),
    config: TrainConfig = TrainConfig(lr=1e-4),
) -> TrainResult:
    """One dense-delta diff per task (zero-initialised, Adam), returned in task order."""
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = {n: m for n, m in install_multi_diff(model).items() if dense.selects(n)}
    if not wrapped:
        raise ValueError(
            f"no module matches targets {dense.targets} in layers {dense.layers}; nothing to train"
        )
    encoder = _Encoder(tokenizer)
    device = next(model.parameters()).device
    started, tokens = time.perf_counter(), 0
    diffs: list[WeightDiff] = []
    final: dict[str, float] = {}
    for start in range(0, len(tasks), dense.tasks_per_batch):
        group = list(tasks[start : start + dense.tasks_per_batch])
        deltas = {
            n: torch.zeros(
                len(group), *m.base.weight.shape, device=device, requires_grad=True
            )  # [tasks, d_out, d_in]
            for n, m in wrapped.items()
        }
        opt = torch.optim.Adam(list(deltas.values()), lr=config.lr)
        samplers = [random.Random(_task_seed(config.seed, t.diff_id, "data")) for t in group]
        history: list[list[float]] = [[] for _ in group]
        for step in range(config.steps):
            batch = _sample_batch(encoder, group, samplers, config, device)
            tokens += int(batch.attention_mask.sum())
            base_logp = _base_logprobs(model, batch)
            with applied(wrapped, {n: [RowDense(D, batch.row_task)] for n, D in deltas.items()}):
                logp = _assistant_logprobs(
                    model, batch.input_ids, batch.attention_mask, batch.targets_at
                )
            per_task = _per_task_loss(
                logp, base_logp, batch, len(group), config.kl_weight
            )  # [tasks]
            bad = (~torch.isfinite(per_task)).nonzero().flatten().tolist()
            if bad:
                raise FloatingPointError(
                    f"loss became NaN/inf at step {step} for diff(s) {', '.join(group[i].diff_id for i in bad[:5])}; lower the lr"
                )
            opt.zero_grad(set_to_none=True)
            per_task.sum().backward()  # each task's delta gets gradients from its own rows only
            opt.step()
            for t, value in enumerate(per_task.tolist()):
                history[t].append(value)
        for t, task in enumerate(group):
            diffs.append(
                WeightDiff(
                    task.diff_id,
                    "full",
                    dense={n: D[t].detach().float().cpu().clone() for n, D in deltas.items()},
                )
            )
            final[task.diff_id] = sum(history[t][-10:]) / len(history[t][-10:])
    return TrainResult(diffs, final, time.perf_counter() - started, tokens)
