"""Pretraining the tiny base model: a small Qwen3 config trained on the packed synthetic corpus.

Owns the model config and the training loop (AdamW, warmup + cosine, next-token loss on packed
conversations). Deterministic for a given recipe and thread count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM


@dataclass(frozen=True)
class ModelShape:
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 32


@dataclass(frozen=True)
class PretrainStats:
    steps: int
    tokens: int
    seconds: float
    final_loss: float
    n_params: int

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)


def make_model(shape: ModelShape, tokenizer: PreTrainedTokenizerFast, seed: int) -> Qwen3ForCausalLM:
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        head_dim=shape.head_dim,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    return Qwen3ForCausalLM(config)


def pack(token_stream: list[int], seq_len: int) -> torch.Tensor:
    """Cut the concatenated corpus into rows of `seq_len` tokens: no padding, no wasted compute."""
    n_rows = len(token_stream) // seq_len
    return torch.tensor(token_stream[: n_rows * seq_len], dtype=torch.long).view(n_rows, seq_len)


def pretrain(
    model: Qwen3ForCausalLM,
    rows: torch.Tensor,  # [n_rows, seq_len]
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    on_step: Callable[[int, float], None] | None = None,
) -> PretrainStats:
    torch.manual_seed(seed)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr, betas=(0.9, 0.95),
    )
    warmup = max(1, steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(rows), generator=gen)
    start = time.perf_counter()
    tokens = 0
    ema = float("nan")
    for step in range(steps):
        idx = order[(step * batch_size + torch.arange(batch_size)) % len(rows)]
        batch = rows[idx]
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        loss = model(input_ids=batch, labels=batch).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"pretraining loss became {loss.item()} at step {step}; lower the lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += batch.numel()
        ema = loss.item() if math.isnan(ema) else 0.95 * ema + 0.05 * loss.item()
        if on_step is not None:
            on_step(step, ema)
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    return PretrainStats(steps, tokens, time.perf_counter() - start, ema, n_params)
