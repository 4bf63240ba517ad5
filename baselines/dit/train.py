"""The DIT training recipe (the paper's Diff Interpretation Tuning): load, build, loop, save.

One adapter A is trained so that M ⊕ Δᵢ ⊕ A answers the fixed question with the label yᵢ, over
many labelled diffs at once (each batch row its own Δᵢ, A shared on top; only A trains). Owns the
loop, checkpoints and resume, validation checks and early stopping; the loss lives in `loss.py`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ...benchmark.judge.base import Judge
from ...core.engine import Engine
from ...core.errors import WdqaError
from ...core.lora import install_multi_diff
from ...core.models import compiled_decoder
from ...core.types import WeightDiff
from .adapter import DitAdapter, save_adapter
from .answer_template import TARGET_RULE
from .config import DitConfig
from .data import LabelledDiffs, collate, make_examples
from .loss import StackedDiffs, per_row_loss
from .validate import validate

CHECKPOINT_FILE = "checkpoint.pt"


class CheckpointMismatchError(WdqaError):
    """A checkpoint in the output folder from a different config or training set."""


@dataclass
class TrainState:
    """Everything a resumed run needs besides the tensors."""

    step: int = 0
    total_steps: int = 0
    best_step: int = 0
    best_val: float | None = None
    checks_without_gain: int = 0
    stopped_early: bool = False
    finished: bool = False
    seconds: float = 0.0
    resumed_at: list[int] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DitResult:
    adapter: WeightDiff
    record: dict[str, Any]
    out_dir: Path


Progress = Callable[[TrainState, dict[str, Any]], None]


def select_train(data: LabelledDiffs, config: DitConfig) -> LabelledDiffs:
    """The diffs this run trains on: a seeded shuffle, then the first max_diffs / fraction of it."""
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(config.seed)).tolist()
    n = len(data)
    if config.max_diffs is not None:
        n = min(n, config.max_diffs)
    elif config.fraction is not None:
        n = max(1, round(len(data) * config.fraction))
    return data.subset(sorted(order[:n]))


def with_null_diffs(model: PreTrainedModel, train: LabelledDiffs, config: DitConfig) -> LabelledDiffs:
    """`train` plus `config.null_diffs` random LoRAs matched to its diffs' rank and per-module norm."""
    if config.null_diffs == 0:
        return train
    from ...generators.splits.null import module_norms, module_shapes, random_matched_lora

    loras = [d for d in train.diffs if d.kind == "lora"]
    if not loras:
        raise ValueError("null_diffs needs LoRA train diffs to match their rank and norm")
    shapes = module_shapes(model, sorted({m.rpartition(".")[2] for d in loras for m in d.modules}))
    norms, rank = module_norms(loras), max(d.rank for d in loras)
    nulls = [random_matched_lora(shapes, f"dit-null-{i:04d}", norms, rank, config.seed) for i in range(config.null_diffs)]
    n = config.null_diffs
    return LabelledDiffs(
        [*train.diffs, *nulls], [*train.labels, *[config.null_label] * n],
        [*train.questions, *[train.questions[0]] * n], [*train.behaviours, *["null"] * n],
    )


def train_dit(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train: LabelledDiffs,
    config: DitConfig,
    out_dir: str | Path,
    val: LabelledDiffs | None = None,
    judge: Judge | None = None,
    progress: Progress | None = None,
    stop_after_steps: int | None = None,
) -> DitResult:
    """Train (or resume training) a DIT adapter into `out_dir`; returns the best adapter.

    `stop_after_steps` ends the run early at that step with a checkpoint, as a crash would.
    """
    # 1. validate and pick the data
    config.validate()
    out_dir = Path(out_dir)
    train = select_train(train, config)
    if len(train) == 0:
        raise ValueError("DIT needs at least one labelled training diff; the split is empty")
    train = with_null_diffs(model, train, config)
    examples = make_examples(
        tokenizer, [d.diff_id for d in train.diffs], train.labels, train.questions, config.answer_template
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    # 2. build: frozen M with multi-diff layers, stacked Δs, adapter A, optimiser
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = install_multi_diff(model)
    device = next(model.parameters()).device
    stacked = StackedDiffs(wrapped, train.diffs)
    adapter = DitAdapter(wrapped, config.targets, config.rank, config.scale, seed=config.seed)
    optimizer = torch.optim.AdamW(adapter.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(config.warmup_steps, 0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / (warmup + 1)))
    steps_per_epoch = math.ceil(len(train) / config.batch_diffs)
    state = TrainState(total_steps=config.epochs * steps_per_epoch)
    best_tensors = [p.detach().clone() for p in adapter.parameters()]
    engine = Engine(model, tokenizer, max_batch=max(config.batch_diffs, 32)) if val is not None else None
    decoder = compiled_decoder(model) if config.compile else None
    val = _validation_subset(val, config)

    # 3. resume where an earlier run of the same config stopped
    checkpoint = out_dir / CHECKPOINT_FILE
    if checkpoint.exists():
        state, best_tensors = _load_checkpoint(checkpoint, config, train, adapter, optimizer, scheduler)
        state.resumed_at.append(state.step)

    # 4. loop: each step a different set of diffs, one row each
    window: list[float] = []
    t_start = time.perf_counter() - state.seconds
    while state.step < state.total_steps and not state.stopped_early:
        epoch, k = divmod(state.step, steps_per_epoch)
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
        index = order[k * config.batch_diffs : (k + 1) * config.batch_diffs]
        batch = collate([examples[i] for i in index.tolist()], pad_id, device)
        loss = per_row_loss(model, wrapped, batch, stacked.rows(index), adapter, decoder).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        state.step += 1
        window.append(loss.item())
        last = state.step == state.total_steps
        if state.step % config.eval_every == 0 or last:
            entry: dict[str, Any] = {"step": state.step, "epoch": epoch, "train_loss": sum(window) / len(window)}
            window = []
            if engine is not None and val is not None:
                score = validate(engine, val, adapter.to_weight_diff(), config.max_new_tokens, judge, config.answer_template)
                entry.update(val_exact=score.exact, val_judge=score.judge_mean, val_n=score.n, val_examples=score.examples)
                if state.best_val is None or score.key > state.best_val + 1e-9:
                    state.best_val, state.best_step, state.checks_without_gain = score.key, state.step, 0
                    best_tensors = [p.detach().clone() for p in adapter.parameters()]
                else:
                    state.checks_without_gain += 1
                    state.stopped_early = state.checks_without_gain >= config.patience
            state.history.append(entry)
            if progress:
                progress(state, entry)
        elif progress:
            progress(state, {"step": state.step, "train_loss": window[-1]})
        state.seconds = time.perf_counter() - t_start
        if state.step % config.checkpoint_every == 0 or (stop_after_steps is not None and state.step >= stop_after_steps):
            _save_checkpoint(checkpoint, config, train, adapter, optimizer, scheduler, state, best_tensors)
        if stop_after_steps is not None and state.step >= stop_after_steps:
            break

    # 5. save the best adapter (the last one when there is no validation split)
    state.finished = state.step >= state.total_steps or state.stopped_early
    if val is None:
        best_tensors = [p.detach().clone() for p in adapter.parameters()]
        state.best_step = state.step
    _save_checkpoint(checkpoint, config, train, adapter, optimizer, scheduler, state, best_tensors)
    with torch.no_grad():
        for p, best in zip(adapter.parameters(), best_tensors, strict=True):
            p.copy_(best)
    result = adapter.to_weight_diff("dit")
    record = _record(config, train, state, adapter, val, judge)
    weight = next(model.parameters())
    record["base_model_loaded"] = {"device": str(weight.device), "dtype": str(weight.dtype).removeprefix("torch.")}
    save_adapter(out_dir, result, record)
    return DitResult(result, record, out_dir)


def _validation_subset(val: LabelledDiffs | None, config: DitConfig) -> LabelledDiffs | None:
    if val is None or len(val) == 0:
        return None
    return val.subset(range(min(len(val), config.eval_limit)))


def _record(
    config: DitConfig, train: LabelledDiffs, state: TrainState, adapter: DitAdapter, val: LabelledDiffs | None, judge: Judge | None
) -> dict[str, Any]:
    return {
        "method": "dit",
        "config": config.to_dict(),
        "target_rule": TARGET_RULE,
        "n_train_diffs": len(train),
        "train_diff_ids": [d.diff_id for d in train.diffs],
        "n_val_diffs": len(val) if val is not None else 0,
        "val_judge": f"{judge.name}@{judge.prompt_version}" if judge is not None else None,
        "adapter_params": adapter.n_params,
        "steps": state.step,
        "total_steps": state.total_steps,
        "best_step": state.best_step,
        "best_val": state.best_val,
        "stopped_early": state.stopped_early,
        "finished": state.finished,
        "resumed_at": state.resumed_at,
        "train_seconds": round(state.seconds, 2),
        "history": state.history,
    }


def _save_checkpoint(
    path: Path,
    config: DitConfig,
    train: LabelledDiffs,
    adapter: DitAdapter,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: TrainState,
    best: list[torch.Tensor],
) -> None:
    payload = {
        "config": config.to_dict(),
        "train_diff_ids": [d.diff_id for d in train.diffs],
        "adapter": adapter.state_dict(),
        "best": best,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "state": {k: v for k, v in vars(state).items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # a crash mid-write leaves the previous checkpoint intact


def _load_checkpoint(
    path: Path,
    config: DitConfig,
    train: LabelledDiffs,
    adapter: DitAdapter,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
) -> tuple[TrainState, list[torch.Tensor]]:
    payload = torch.load(path, weights_only=True)  # tensors and plain values only: no pickled code runs
    problems = []
    # `compile` changes speed, not the run: a checkpoint resumes with or without it.
    saved = {k: v for k, v in payload["config"].items() if k != "compile"}
    wanted = {k: v for k, v in config.to_dict().items() if k != "compile"}
    if saved != wanted:
        changed = sorted(k for k in saved.keys() | wanted.keys() if saved.get(k) != wanted.get(k))
        problems.append(f"the config differs ({', '.join(changed)})")
    if payload["train_diff_ids"] != [d.diff_id for d in train.diffs]:
        problems.append("the training diffs differ")
    if problems:
        raise CheckpointMismatchError(
            f"{path} is a checkpoint of another DIT run: {' and '.join(problems)}. "
            "Use another --out folder, or delete the checkpoint to start over."
        )
    adapter.load_state_dict(payload["adapter"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    return TrainState(**payload["state"]), list(payload["best"])
