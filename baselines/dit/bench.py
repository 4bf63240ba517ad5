"""DIT speed, measured side by side in one run: training throughput against this machine's matmul
FLOP/s, and evaluation batched through `Engine.chat` against one PEFT model per diff.

Owns the measurements only; `commands.py` prints them. FLOPs are counted, not estimated: one
training step runs under torch's `FlopCounterMode` (matmuls of forward and backward).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ...benchmark.bench import peft_one_at_a_time
from ...core.engine import Engine
from ...core.lora import install_multi_diff, merge_lora
from ...core.models import compiled_decoder
from ...core.types import WeightDiff
from .adapter import DitAdapter
from .config import DitConfig
from .data import LabelledDiffs, collate, make_examples
from .loss import StackedDiffs, per_row_loss


@dataclass(frozen=True)
class MatmulPeak:
    shape: tuple[int, int, int]  # (m, k, n): [m, k] @ [k, n]
    flop_per_s: float


@dataclass(frozen=True)
class TrainSpeed:
    steps: int
    batch_diffs: int
    seconds: float
    tokens: int  # non-padding tokens through the model
    flop_per_step: float

    @property
    def diffs_per_s(self) -> float:
        return self.steps * self.batch_diffs / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def flop_per_s(self) -> float:
        return self.steps * self.flop_per_step / self.seconds


@dataclass(frozen=True)
class EvalSpeed:
    label: str
    cases: int
    seconds: float
    answers: tuple[str, ...] = ()

    @property
    def cases_per_s(self) -> float:
        return self.cases / self.seconds


def matmul_peak(shapes: Sequence[tuple[int, int, int]], repeats: int = 20) -> MatmulPeak:
    """The best fp32 matmul FLOP/s over the given shapes on this machine and thread count."""
    best = MatmulPeak((0, 0, 0), 0.0)
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(3):
            a @ b
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        rate = 2 * m * k * n * repeats / (time.perf_counter() - t0)
        if rate > best.flop_per_s:
            best = MatmulPeak((m, k, n), rate)
    return best


def train_speed(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, data: LabelledDiffs, config: DitConfig, steps: int = 20
) -> TrainSpeed:
    """Time `steps` DIT optimiser steps (after three warm-up steps, which also compile with
    `config.compile`) exactly as `train_dit` runs them; the same seed gives the same batches."""
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = install_multi_diff(model)
    device = next(model.parameters()).device
    stacked = StackedDiffs(wrapped, data.diffs)
    adapter = DitAdapter(wrapped, config.targets, config.rank, config.scale, seed=config.seed)
    optimizer = torch.optim.AdamW(adapter.parameters(), lr=config.lr)
    examples = make_examples(tokenizer, [d.diff_id for d in data.diffs], data.labels, data.questions)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    g = torch.Generator().manual_seed(config.seed)
    batches = []
    for _ in range(steps + 3):
        index = torch.randint(len(data), (config.batch_diffs,), generator=g)
        batches.append((index, collate([examples[i] for i in index.tolist()], pad, device)))

    decoder = compiled_decoder(model) if config.compile else None

    def step(index: torch.Tensor, batch: object, decoder: Any = decoder) -> None:
        loss = per_row_loss(model, wrapped, batch, stacked.rows(index), adapter, decoder).mean()  # type: ignore[arg-type]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    counter = FlopCounterMode(display=False)
    with counter:  # eager: the mode sees every matmul, which a compiled graph would hide from it
        step(*batches[0], decoder=None)
    for index, batch in batches[1:3]:  # warm-up, and the compile (a second length may recompile once)
        step(index, batch)
    _sync(device)
    t0 = time.perf_counter()
    for index, batch in batches[3:]:
        step(index, batch)
    _sync(device)  # on a GPU the loop only queues kernels: time their end, not their launch
    seconds = time.perf_counter() - t0
    tokens = sum(b.tokens for _, b in batches[3:])
    # Sequences differ in length only by a label's few tokens; scale the counted step by tokens.
    flop_per_step = counter.get_total_flops() / max(batches[0][1].tokens, 1) * tokens / steps
    return TrainSpeed(steps, config.batch_diffs, seconds, tokens, flop_per_step)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def eval_speed_batched(engine: Engine, diffs: Sequence[WeightDiff], question: str, adapter: WeightDiff, max_new_tokens: int) -> EvalSpeed:
    engine.chat(list(diffs[:2]), [question] * min(2, len(diffs)), max_new_tokens=2, shared=[adapter])  # warm-up
    t0 = time.perf_counter()
    answers = engine.chat(list(diffs), [question] * len(diffs), max_new_tokens=max_new_tokens, shared=[adapter])
    return EvalSpeed("batched: Engine.chat, all diffs in one batch, DIT shared", len(diffs), time.perf_counter() - t0, tuple(answers))


def eval_speed_peft(
    base: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, diffs: Sequence[WeightDiff], question: str, adapter: WeightDiff, max_new_tokens: int
) -> EvalSpeed:
    """One PEFT model per diff, as a user without multi-LoRA batching would: M ⊕ Δ ⊕ A exported as
    one merged LoRA per diff, loaded with PeftModel, the same greedy answer, unloaded."""
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    loop = peft_one_at_a_time(base, tokenizer, [merge_lora(d, adapter) for d in diffs], prompt, max_new_tokens)
    return EvalSpeed("one PeftModel per diff (merged Δ+DIT LoRA)", len(diffs), loop.seconds, tuple(loop.answers))
