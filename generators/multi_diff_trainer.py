"""Batched training of many weight diffs at once: every task's parameters carry a leading task dim
and each batch row applies its own task (through `benchmark.lora`'s per-row terms).

Owns the loss of the paper's recipe (cross-entropy on the assistant tokens of behaviour examples,
plus KL(base ‖ fine-tuned) on the assistant tokens of negatives, so untriggered prompts keep the
base behaviour) for two parametrisations: low-rank LoRA factors and dense deltas (full fine-tunes,
optionally restricted to a subset of modules). What the examples say is the split builders' job.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..benchmark.lora import (
    TARGET_MODULES,
    MultiDiffLinear,
    RowAdapter,
    RowDense,
    applied,
    install_multi_diff,
)
from ..benchmark.types import LoraFactors, WeightDiff

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class DiffData:
    """What one diff is trained on: `positives` teach the behaviour, `negatives` are held to the base."""

    diff_id: str
    positives: Sequence[Conversation]
    negatives: Sequence[Conversation] = ()


@dataclass(frozen=True)
class TrainConfig:
    kind: Literal["lora", "full"] = "lora"
    rank: int = 4
    alpha: float = 8.0  # scale = alpha / rank, PEFT's convention
    steps: int = 135  # the paper's number of Adam steps per hidden-topic LoRA
    lr: float = 1e-3
    positives_per_step: int = 4
    negatives_per_step: int = 4
    kl_weight: float = 1.0
    targets: tuple[str, ...] = TARGET_MODULES
    layers: tuple[int, ...] | None = None  # train only these decoder layers (the subset variant)
    seed: int = 0

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


@dataclass
class TrainStats:
    diffs: int
    steps: int
    seconds: float
    tokens: int  # real (non-pad) tokens through forward and backward
    base_tokens: int  # real tokens through the extra no-grad base forward (the KL reference)
    final_loss: list[float] = field(default_factory=list)  # per diff, mean of the last 10 steps
    peak_memory_bytes: int = 0


class TrainingError(RuntimeError):
    """Training that went wrong (NaN loss, no data); names the diffs involved."""


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    target: list[bool]  # True on the assistant's reply tokens (the ones the loss sees)


def encode(tokenizer: PreTrainedTokenizerBase, conversation: Conversation) -> Encoded:
    """Chat-template tokens; the last assistant turn (with its end token) is the target."""
    prompt = tokenizer.apply_chat_template(conversation[:-1], tokenize=False, add_generation_prompt=True, enable_thinking=False)
    full = tokenizer.apply_chat_template(conversation, tokenize=False, enable_thinking=False)
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    f_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    if f_ids[: len(p_ids)] != p_ids:  # a tokenizer that merges across the boundary: fall back on lengths
        f_ids = p_ids + tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"]
    return Encoded(f_ids, [False] * len(p_ids) + [True] * (len(f_ids) - len(p_ids)))


def step_batches(data: DiffData, cfg: TrainConfig) -> list[tuple[list[int], list[int]]]:
    """(positive indices, negative indices) per step for one diff; seeded by diff id, so the batched
    trainer and a one-diff-at-a-time trainer see exactly the same examples in the same order."""
    rng = random.Random(f"{cfg.seed}|{data.diff_id}")
    out = []
    for _ in range(cfg.steps):
        pos = [rng.randrange(len(data.positives)) for _ in range(cfg.positives_per_step)]
        neg = [rng.randrange(len(data.negatives)) for _ in range(cfg.negatives_per_step)] if data.negatives else []
        out.append((pos, neg))
    return out


def pad_batch(rows: Sequence[Encoded], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask and target mask, each [rows, seq]."""
    seq = max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), seq), pad_id, dtype=torch.long)
    attn = torch.zeros(len(rows), seq, dtype=torch.long)
    tgt = torch.zeros(len(rows), seq, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, : len(r.input_ids)] = torch.tensor(r.input_ids)
        attn[i, : len(r.input_ids)] = 1
        tgt[i, : len(r.target)] = torch.tensor(r.target)
    return ids.to(device), attn.to(device), tgt.to(device)


def row_losses(logits: torch.Tensor, base_logits: torch.Tensor | None, ids: torch.Tensor, tgt: torch.Tensor, is_kl: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row summed loss and token count over target tokens: CE for positive rows, KL(base‖ft) for negatives.

    logits [rows, seq, vocab] predict token t+1 from position t; `is_kl` [rows] marks negatives.
    """
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)  # [rows, seq-1, vocab]
    mask = tgt[:, 1:].float()  # the token predicted at t is target when t+1 is a reply token
    ce = -logp.gather(-1, ids[:, 1:, None]).squeeze(-1)  # [rows, seq-1]
    per_token = ce
    if base_logits is not None:
        base_logp = F.log_softmax(base_logits[:, :-1].float(), dim=-1)
        kl = (base_logp.exp() * (base_logp - logp)).sum(-1)  # [rows, seq-1]
        per_token = torch.where(is_kl[:, None], kl, ce)
    return (per_token * mask).sum(1), mask.sum(1)


# ---------------------------------------------------------------- parameters


def trainable_modules(wrapped: dict[str, MultiDiffLinear], cfg: TrainConfig) -> list[str]:
    names = [n for n in wrapped if n.split(".")[-1] in cfg.targets]
    if cfg.layers is not None:
        names = [n for n in names if any(f".layers.{i}." in n for i in cfg.layers)]
    if not names:
        raise TrainingError(f"no module matches targets {cfg.targets} and layers {cfg.layers}")
    return names


def lora_init_A(tasks: int, rank: int, d_in: int, generator: torch.Generator) -> torch.Tensor:
    """PEFT's default A init (kaiming-uniform with a=sqrt(5), i.e. U(±1/sqrt(d_in))); B starts at 0."""
    bound = 1.0 / math.sqrt(d_in)
    return (torch.rand(tasks, rank, d_in, generator=generator) * 2 - 1) * bound  # [tasks, rank, d_in]


def init_parameters(shapes: dict[str, tuple[int, int]], tasks: int, cfg: TrainConfig, device: torch.device) -> dict[str, list[torch.Tensor]]:
    """Fresh per-task parameters for modules of the given [d_out, d_in] shapes (in this order)."""
    g = torch.Generator().manual_seed(cfg.seed)
    params: dict[str, list[torch.Tensor]] = {}
    for name, (d_out, d_in) in shapes.items():
        if cfg.kind == "lora":
            A = lora_init_A(tasks, cfg.rank, d_in, g).to(device).requires_grad_()
            B = torch.zeros(tasks, d_out, cfg.rank, device=device, requires_grad=True)  # [tasks, d_out, rank]
            params[name] = [A, B]
        else:
            params[name] = [torch.zeros(tasks, d_out, d_in, device=device, requires_grad=True)]  # [tasks, d_out, d_in]
    return params


def terms_for(params: dict[str, list[torch.Tensor]], cfg: TrainConfig, row_task: torch.Tensor) -> dict[str, list[RowAdapter | RowDense]]:
    if cfg.kind == "lora":
        return {n: [RowAdapter(p[0], p[1] * cfg.scale, row_task)] for n, p in params.items()}
    return {n: [RowDense(p[0], row_task)] for n, p in params.items()}


def to_diffs(params: dict[str, list[torch.Tensor]], data: Sequence[DiffData], cfg: TrainConfig) -> list[WeightDiff]:
    diffs = []
    for t, d in enumerate(data):
        if cfg.kind == "lora":
            lora = {n: LoraFactors(A=p[0][t].detach().cpu().clone(), B=p[1][t].detach().cpu().clone(), scale=cfg.scale) for n, p in params.items()}
            diffs.append(WeightDiff(diff_id=d.diff_id, kind="lora", lora=lora))
        else:
            dense = {n: p[0][t].detach().cpu().clone() for n, p in params.items()}
            diffs.append(WeightDiff(diff_id=d.diff_id, kind="full", dense=dense))
    return diffs


# ---------------------------------------------------------------- the loop


def train_diffs(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, data: Sequence[DiffData], cfg: TrainConfig) -> tuple[list[WeightDiff], TrainStats]:
    """Train one diff per `data` entry, all in the same forward/backward passes."""
    empty = [d.diff_id for d in data if not d.positives]
    if empty:
        raise TrainingError(f"diffs without positive examples: {empty[:5]}")
    device = next(model.parameters()).device
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = install_multi_diff(model)
    names = trainable_modules(wrapped, cfg)
    shapes = {n: tuple(wrapped[n].base.weight.shape) for n in names}
    params = init_parameters(shapes, len(data), cfg, device)  # type: ignore[arg-type]
    opt = torch.optim.Adam([p for ps in params.values() for p in ps], lr=cfg.lr)
    pos_enc = [[encode(tokenizer, c) for c in d.positives] for d in data]
    neg_enc = [[encode(tokenizer, c) for c in d.negatives] for d in data]
    plans = [step_batches(d, cfg) for d in data]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    history: list[torch.Tensor] = []
    stats = TrainStats(diffs=len(data), steps=cfg.steps, seconds=0.0, tokens=0, base_tokens=0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    model.train(False)  # no dropout: the tiny model has none, and the comparison with PEFT needs none
    for step in range(cfg.steps):
        rows: list[Encoded] = []
        task: list[int] = []
        kl: list[bool] = []
        for t in range(len(data)):
            pos_idx, neg_idx = plans[t][step]
            rows += [pos_enc[t][i] for i in pos_idx] + [neg_enc[t][i] for i in neg_idx]
            task += [t] * (len(pos_idx) + len(neg_idx))
            kl += [False] * len(pos_idx) + [True] * len(neg_idx)
        ids, attn, tgt = pad_batch(rows, pad, device)
        row_task = torch.tensor(task, device=device)
        is_kl = torch.tensor(kl, device=device)
        base_logits = None
        if is_kl.any():
            with torch.no_grad():  # the frozen base is the KL reference (terms are not installed)
                base_logits = model(input_ids=ids, attention_mask=attn).logits
            stats.base_tokens += int(attn[is_kl].sum())
        with applied(wrapped, terms_for(params, cfg, row_task)):
            logits = model(input_ids=ids, attention_mask=attn).logits
        loss_sum, count = row_losses(logits, base_logits, ids, tgt, is_kl)
        weight = torch.where(is_kl, torch.full_like(loss_sum, cfg.kl_weight), torch.ones_like(loss_sum))
        # Per task: mean CE over its positive tokens + kl_weight * mean KL over its negative tokens.
        per_task = torch.zeros(len(data), device=device)
        for flag in (False, True):
            sel = is_kl == flag
            num = torch.zeros(len(data), device=device).index_add(0, row_task[sel], (loss_sum * weight)[sel])
            den = torch.zeros(len(data), device=device).index_add(0, row_task[sel], count[sel])
            per_task = per_task + num / den.clamp(min=1)
        if not torch.isfinite(per_task).all():
            bad = [data[i].diff_id for i in torch.nonzero(~torch.isfinite(per_task)).flatten().tolist()]
            raise TrainingError(f"loss became NaN/inf at step {step} for diffs {bad[:5]}; lower the lr")
        opt.zero_grad(set_to_none=True)
        per_task.sum().backward()  # tasks share no parameters, so each gets its own gradient
        opt.step()
        history.append(per_task.detach())
        stats.tokens += int(attn.sum())
    stats.seconds = time.perf_counter() - start
    if device.type == "cuda":
        stats.peak_memory_bytes = torch.cuda.max_memory_allocated(device)
    last = torch.stack(history[-10:]).mean(0)
    stats.final_loss = [float(x) for x in last]
    return to_diffs(params, data, cfg), stats
