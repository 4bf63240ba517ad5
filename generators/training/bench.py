"""`wdqa bench train`'s measurements: the batched multi-LoRA trainer (`trainer.py`) against one PEFT
LoRA after another on the same diffs, data, steps, seed and initial weights (figures, never timed tests).

Owns the sequential PEFT reference and the measuring. The reference draws its batches and initial
factors with the batched trainer's own seeded helpers, so per diff both see identical examples and
start from identical weights: any loss difference is arithmetic, not sampling.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ...core.lora import linear_module_names
from ...core.measure import forward_flops, peak_memory
from ...core.types import LoraFactors, WeightDiff
from .trainer import (
    DiffTask,
    LoraConfig,
    TrainConfig,
    TrainResult,
    _assistant_logprobs,
    _base_logprobs,
    _Encoder,
    _per_task_loss,
    _sample_batch,
    _task_seed,
    train_lora_diffs,
)


@dataclass(frozen=True)
class TrainSpeed:
    label: str
    result: TrainResult
    flops: float
    peak_memory_bytes: int

    @property
    def diffs_per_s(self) -> float:
        return self.result.diffs_per_s

    @property
    def tokens_per_s(self) -> float:
        return self.result.tokens_per_s

    @property
    def flop_per_s(self) -> float:
        return self.flops / max(self.result.seconds, 1e-9)

    @property
    def final_loss(self) -> float:
        values = list(self.result.final_loss.values())
        return sum(values) / len(values)


def training_flops(model: torch.nn.Module, tokens: int) -> float:
    """2 FLOPs per base parameter per token forward + 2 backward (the frozen base needs the activation
    gradient only). The KL reference's base forward on negatives and the LoRA terms are not counted,
    so this is a lower bound on the work done, equal for both ways."""
    return 2 * forward_flops(model, tokens)


def train_peft_sequential(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    tasks: Sequence[DiffTask],
    lora: LoraConfig = LoraConfig(),
    config: TrainConfig = TrainConfig(),
) -> TrainResult:
    """The naive way: a fresh PEFT LoRA per diff, trained alone (same batches, init, loss, steps)."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    device = next(model.parameters()).device
    base = model
    for p in base.parameters():
        p.requires_grad_(False)
    names = linear_module_names(base, lora.targets)
    encoder = _Encoder(tokenizer)
    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    diffs, final, tokens = [], {}, 0
    started = time.perf_counter()
    for task in tasks:
        peft_model = get_peft_model(
            base,
            PeftLoraConfig(
                r=lora.rank,
                lora_alpha=lora.alpha,
                lora_dropout=0.0,
                target_modules=list(lora.targets),
            ),
        )
        layers = {n: peft_model.base_model.model.get_submodule(n) for n in names}
        with torch.no_grad():
            for n, layer in layers.items():  # the batched trainer's init for this diff and module
                d_in = layer.lora_A["default"].weight.shape[1]
                gen = torch.Generator().manual_seed(_task_seed(config.seed, task.diff_id, n))
                A = torch.empty(lora.rank, d_in).uniform_(-(d_in**-0.5), d_in**-0.5, generator=gen)
                layer.lora_A["default"].weight.copy_(A)
                layer.lora_B["default"].weight.zero_()
        opt = torch.optim.Adam(
            [p for p in peft_model.parameters() if p.requires_grad], lr=config.lr
        )
        sampler = [random.Random(_task_seed(config.seed, task.diff_id, "data"))]
        history = []
        for _ in range(config.steps):
            batch = _sample_batch(encoder, [task], sampler, config, device)
            tokens += int(batch.attention_mask.sum())
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
                with peft_model.disable_adapter():
                    base_logp = _base_logprobs(peft_model.base_model.model, batch)
                logp = _assistant_logprobs(
                    peft_model.base_model.model,
                    batch.input_ids,
                    batch.attention_mask,
                    batch.targets_at,
                )
            loss = _per_task_loss(logp, base_logp, batch, 1, config.kl_weight)[0]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history.append(loss.item())
        final[task.diff_id] = sum(history[-10:]) / len(history[-10:])
        diffs.append(
            WeightDiff(
                task.diff_id,
                "lora",
                lora={
                    n: LoraFactors(
                        A=layer.lora_A["default"].weight.detach().float().cpu().clone(),
                        B=layer.lora_B["default"].weight.detach().float().cpu().clone(),
                        scale=lora.scale,
                    )
                    for n, layer in layers.items()
                },
            )
        )
        base = peft_model.unload()  # the plain base back, adapters removed without merging
    return TrainResult(diffs, final, time.perf_counter() - started, tokens)


def bench_train(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    tasks: Sequence[DiffTask],
    lora: LoraConfig,
    config: TrainConfig,
    compile_too: bool = False,
) -> list[TrainSpeed]:
    """Both ways on the same diffs (and, with `compile_too`, the batched trainer with its decoder
    through torch.compile), each on its own copy of the base model (the batched trainer rewires
    linear layers in place; PEFT wants plain ones). The compiled run is timed after a 2-step warm-up
    on the same copy, which compiles; its label says how long that took."""
    device = next(model.parameters()).device
    ways: list[tuple[str, Callable[..., TrainResult], bool]] = [
        ("batched multi-LoRA", train_lora_diffs, False),
        ("one PEFT LoRA per diff", train_peft_sequential, False),
    ]
    if compile_too:
        ways.append(("batched multi-LoRA, torch.compile", partial(train_lora_diffs, compile_decoder=True), True))
    runs = []
    for label, trainer, warm_up in ways:
        work = copy.deepcopy(model)
        if warm_up:
            t0 = time.perf_counter()
            trainer(work, tokenizer, tasks, lora, replace(config, steps=2))
            label += f" (compiled in a {time.perf_counter() - t0:.0f} s warm-up)"
        with peak_memory(device) as peak:
            result = trainer(work, tokenizer, tasks, lora, config)
        runs.append(TrainSpeed(label, result, training_flops(model, result.tokens), peak[0]))
        del work
    return runs
