"""`wdqa bench train`: the batched multi-diff trainer against one PEFT LoRA after another, on the
same diffs, data, steps, seed and initial weights, with figures printed side by side (never timed tests).

Owns the sequential PEFT reference and the measuring; the batched trainer lives in multi_diff_trainer.py.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..benchmark.bench import forward_flops
from ..benchmark.lora import linear_module_names
from ..benchmark.types import LoraFactors, WeightDiff
from .multi_diff_trainer import (
    DiffData,
    TrainConfig,
    TrainingError,
    TrainStats,
    encode,
    init_parameters,
    pad_batch,
    row_losses,
    step_batches,
    train_diffs,
)


@dataclass(frozen=True)
class TrainSpeed:
    label: str
    stats: TrainStats
    flops: float
    peak_memory_bytes: int

    @property
    def diffs_per_s(self) -> float:
        return self.stats.diffs / self.stats.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.stats.tokens / self.stats.seconds

    @property
    def flop_per_s(self) -> float:
        return self.flops / self.stats.seconds

    @property
    def final_loss(self) -> float:
        return sum(self.stats.final_loss) / len(self.stats.final_loss)


def training_flops(model: torch.nn.Module, stats: TrainStats) -> float:
    """2 FLOPs per base parameter per token forward and 2 backward (the base takes no weight gradient,
    only the activation gradient), plus the KL reference's forward; LoRA's own FLOPs are not counted."""
    return 2 * forward_flops(model, stats.tokens) + forward_flops(model, stats.base_tokens)


@contextmanager
def peak_memory(device: torch.device) -> Iterator[list[int]]:
    """Peak bytes above the starting point: CUDA's allocator counter, or the process RSS sampled on CPU."""
    box = [0]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        yield box
        box[0] = torch.cuda.max_memory_allocated(device) - base
        return
    page = os.sysconf("SC_PAGE_SIZE")

    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * page

    start, peak, done = rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            done.wait(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        done.set()
        thread.join()
        box[0] = max(peak[0], rss()) - start


def train_peft_sequential(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, data: Sequence[DiffData], cfg: TrainConfig
) -> tuple[list[WeightDiff], TrainStats]:
    """The naive way: a fresh PEFT LoRA per diff, trained alone with the same batches and init."""
    from peft import LoraConfig, get_peft_model

    if cfg.kind != "lora":
        raise TrainingError("the PEFT reference trains LoRA diffs only")
    device = next(model.parameters()).device
    base = copy.deepcopy(model)
    names = [n for n in linear_module_names(base, cfg.targets)
             if cfg.layers is None or any(f".layers.{i}." in n for i in cfg.layers)]
    shapes = {n: tuple(base.get_submodule(n).weight.shape) for n in names}
    init = init_parameters(shapes, len(data), cfg, torch.device("cpu"))  # type: ignore[arg-type]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    stats = TrainStats(diffs=len(data), steps=cfg.steps, seconds=0.0, tokens=0, base_tokens=0)
    diffs = []
    start = time.perf_counter()
    for t, d in enumerate(data):
        peft_cfg = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=0.0, bias="none",
                              target_modules=list(cfg.targets), layers_to_transform=list(cfg.layers) if cfg.layers else None)
        peft_model = get_peft_model(base, peft_cfg)
        layers = {n: peft_model.base_model.model.get_submodule(n) for n in names}
        with torch.no_grad():
            for n, layer in layers.items():  # the batched trainer's initial weights for task t
                layer.lora_A["default"].weight.copy_(init[n][0][t])
                layer.lora_B["default"].weight.zero_()
        opt = torch.optim.Adam([p for p in peft_model.parameters() if p.requires_grad], lr=cfg.lr)
        pos_enc = [encode(tokenizer, c) for c in d.positives]
        neg_enc = [encode(tokenizer, c) for c in d.negatives]
        history = []
        for pos_idx, neg_idx in step_batches(d, cfg):
            rows = [pos_enc[i] for i in pos_idx] + [neg_enc[i] for i in neg_idx]
            ids, attn, tgt = pad_batch(rows, pad, device)
            is_kl = torch.tensor([False] * len(pos_idx) + [True] * len(neg_idx), device=device)
            base_logits = None
            if neg_idx:
                with torch.no_grad(), peft_model.disable_adapter():
                    base_logits = peft_model(input_ids=ids, attention_mask=attn).logits
                stats.base_tokens += int(attn[is_kl].sum())
            logits = peft_model(input_ids=ids, attention_mask=attn).logits
            loss_sum, count = row_losses(logits, base_logits, ids, tgt, is_kl)
            loss = loss_sum[~is_kl].sum() / count[~is_kl].sum().clamp(min=1)
            if neg_idx:
                loss = loss + cfg.kl_weight * loss_sum[is_kl].sum() / count[is_kl].sum().clamp(min=1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history.append(loss.detach().item())
            stats.tokens += int(attn.sum())
        stats.final_loss.append(sum(history[-10:]) / len(history[-10:]))
        lora = {
            n: LoraFactors(A=layer.lora_A["default"].weight.detach().cpu().clone(),
                           B=layer.lora_B["default"].weight.detach().cpu().clone(), scale=cfg.scale)
            for n, layer in layers.items()
        }
        diffs.append(WeightDiff(diff_id=d.diff_id, kind="lora", lora=lora))
        base = peft_model.unload()  # the plain base back, adapters removed without merging
    stats.seconds = time.perf_counter() - start
    return diffs, stats


def bench_train(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, data: Sequence[DiffData], cfg: TrainConfig) -> tuple[TrainSpeed, TrainSpeed]:
    """Both ways on the same diffs; the batched trainer runs on its own copy of the base model."""
    device = next(model.parameters()).device
    runs = []
    for label, trainer in (("batched multi-diff", train_diffs), ("one PEFT LoRA per diff", train_peft_sequential)):
        work = copy.deepcopy(model)
        with peak_memory(device) as peak:
            _, stats = trainer(work, tokenizer, data, cfg)
        runs.append(TrainSpeed(label, stats, training_flops(model, stats), peak[0]))
        del work
    return runs[0], runs[1]
