"""`wdqa bench dense`'s measurements: N full-finetune (dense) diffs answered in one batch by the
multi-diff engine, beside the naive way of merging each diff into a copy of the model.

Owns the Qwen3-shaped random model, its random dense deltas and the measuring (figures, never timed
tests). The code measured is `lora.RowDense` (rows grouped by diff, one matmul per distinct diff, no
per-row copy of a delta) under `engine.Engine.chat`.
"""

from __future__ import annotations

import copy
import ctypes
import gc
import time
from dataclasses import dataclass, replace

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from torch import nn
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

from ..core.engine import Engine
from ..core.lora import delta_weight, linear_module_names, uninstall_multi_diff
from ..core.measure import peak_memory, process_rss
from ..core.types import WeightDiff

# Qwen3 layouts (tied embeddings, as Qwen3-0.6B to 4B); `tiny` is for tests. `0.5b` is the CPU target: Qwen3-0.6B's
# widths at 24 of its 28 layers, 0.53B parameters of which 0.38B in the linear layers a dense diff touches.
SHAPES: dict[str, dict[str, int]] = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=512),
    "small": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4, head_dim=64, vocab_size=16384),
    "0.5b": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=8, head_dim=128, vocab_size=151936),
    "1.7b": dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128, vocab_size=151936),
    "4b": dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=151936),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class DenseBench:
    """What is measured: `n_diffs` dense diffs, each asked `prompts_per_diff` prompts of `prompt_tokens`
    tokens, `max_new_tokens` greedy tokens each (no end-of-sequence token, so every way decodes as long)."""

    shape: str = "small"
    n_diffs: int = 8
    prompts_per_diff: int = 4
    prompt_tokens: int = 16
    max_new_tokens: int = 16
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    seed: int = 0

    @property
    def rows(self) -> int:
        return self.n_diffs * self.prompts_per_diff


@dataclass(frozen=True)
class DenseWay:
    label: str
    seconds: float
    peak_bytes: int  # memory above the process before the model was built (base, deltas, copies, activations)
    held_bytes: int  # of which held when the way started (the base and the deltas, as resident)
    flops: float  # matmul FLOPs executed (attention scores excluded: short sequences)
    answers: tuple[str, ...]

    @property
    def flop_per_s(self) -> float:
        return self.flops / self.seconds


@dataclass(frozen=True)
class DenseReport:
    bench: DenseBench
    parameters: int
    base_bytes: int
    delta_bytes: int  # all diffs together
    ways: tuple[DenseWay, DenseWay]  # batched, merge-per-diff

    @property
    def budget_bytes(self) -> float:
        """The issue's target for the batched way: base weights + the deltas + 20%."""
        return 1.2 * (self.base_bytes + self.delta_bytes)

    @property
    def answers_agree(self) -> int:
        return sum(a == b for a, b in zip(self.ways[0].answers, self.ways[1].answers, strict=True))


def qwen3_shaped(shape: str, dtype: torch.dtype, device: str, seed: int = 0, min_vocab: int = 0) -> Qwen3ForCausalLM:
    """A random-weight Qwen3 of the named shape, built in `dtype` directly on `device`; its vocabulary
    at least `min_vocab` (a tokenizer's size)."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    widths = {**SHAPES[shape], "vocab_size": max(SHAPES[shape]["vocab_size"], min_vocab)}
    config = Qwen3Config(**widths, max_position_embeddings=512, tie_word_embeddings=True, pad_token_id=0, eos_token_id=None)
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # no fp32 copy of a large model on the way to bf16
    try:
        with torch.device(device):
            model = Qwen3ForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    model.generation_config.eos_token_id = None
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def random_dense_diffs(model: nn.Module, n: int, seed: int = 0) -> list[WeightDiff]:
    """`n` dense diffs touching every target linear layer, in the model's dtype and device."""
    weights = {name: model.get_submodule(name).weight for name in linear_module_names(model)}
    g = torch.Generator(device=next(iter(weights.values())).device).manual_seed(seed)
    diffs = []
    for i in range(n):
        dense = {}
        for name, w in weights.items():
            delta = torch.randn(w.shape, generator=g, dtype=w.dtype, device=w.device)
            dense[name] = delta.mul_(0.02)  # in place: a second temporary per module would be the size of the delta
        diffs.append(WeightDiff(diff_id=f"dense-{i}", kind="full", dense=dense))
    return diffs


def word_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    """One word `w<id>` per token id (0 and 1: pad and unk) and a template that adds nothing: prompts are exact token counts."""
    vocab = {"<pad>": 0, "<unk>": 1, **{f"w{i}": i for i in range(2, vocab_size)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    return fast


def _prompts(bench: DenseBench, vocab_size: int) -> list[str]:
    g = torch.Generator().manual_seed(bench.seed + 1)
    ids = torch.randint(2, vocab_size, (bench.rows, bench.prompt_tokens), generator=g)
    return [" ".join(f"w{i}" for i in row.tolist()) for row in ids]


def _flops(model: nn.Module, bench: DenseBench, rows_with_delta: int, delta_params: int) -> float:
    """Matmul FLOPs of greedy generation with a KV cache: the prompt then max_new_tokens - 1 single
    tokens through every decoder linear layer (plus each row's ΔW where one is applied on the side), the
    vocabulary projection only at the max_new_tokens positions whose logits are used."""
    head = model.get_output_embeddings().weight.numel()
    decoder = sum(m.weight.numel() for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != "lm_head")
    positions = bench.prompt_tokens + bench.max_new_tokens - 1
    return 2.0 * (bench.rows * positions * decoder + rows_with_delta * positions * delta_params + bench.rows * bench.max_new_tokens * head)


def _timed(device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter()


def batched_way(engine: Engine, diffs: list[WeightDiff], prompts: list[str], bench: DenseBench, held: int, delta_params: int) -> DenseWay:
    """Every row's diff applied on the side in one batch (Engine.chat, max_batch = all rows)."""
    row_diffs = [d for d in diffs for _ in range(bench.prompts_per_diff)]
    with peak_memory(torch.device(bench.device)) as peak:
        t0 = _timed(bench.device)
        answers = engine.chat(row_diffs, prompts, max_new_tokens=bench.max_new_tokens)
        seconds = _timed(bench.device) - t0
    flops = _flops(engine.model, bench, bench.rows, delta_params)
    return DenseWay("batched: one matmul per distinct diff", seconds, held + peak[0], held, flops, tuple(answers))


def merge_per_diff_way(
    model: nn.Module, tokenizer: PreTrainedTokenizerFast, diffs: list[WeightDiff], prompts: list[str], bench: DenseBench, held: int
) -> DenseWay:
    """The naive way: per diff, copy the model, add ΔW into its weights, answer that diff's prompts in one batch."""
    answers: list[str] = []
    with peak_memory(torch.device(bench.device)) as peak:
        t0 = _timed(bench.device)
        for i, diff in enumerate(diffs):
            merged = copy.deepcopy(model)
            with torch.no_grad():
                for name in diff.modules:
                    weight = merged.get_submodule(name).weight
                    weight += delta_weight(diff, name).to(weight.dtype)
                mine = prompts[i * bench.prompts_per_diff : (i + 1) * bench.prompts_per_diff]
                enc = tokenizer(mine, return_tensors="pt", add_special_tokens=False).to(bench.device)
                out = merged.generate(**enc, max_new_tokens=bench.max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            new = out[:, enc["input_ids"].shape[1] :]
            answers += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
            del merged, out
        seconds = _timed(bench.device) - t0
    return DenseWay("merge each diff into a copy of the model", seconds, held + peak[0], held, _flops(model, bench, 0, 0), tuple(answers))


def _held_since(start: int, device: str) -> int:
    """Memory held now above `start`: allocated bytes on CUDA; on the CPU the process RSS once freed heap
    pages are given back to the OS (building random deltas leaves freed temporaries that RSS still counts)."""
    gc.collect()
    if device.startswith("cuda"):
        return torch.cuda.memory_allocated() - start
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: RSS keeps the allocator's slack
        pass
    return process_rss() - start


def run_dense_bench(bench: DenseBench) -> DenseReport:
    """Build the model and diffs, warm both ways up on a few rows, then time each way once."""
    gc.collect()
    start = torch.cuda.memory_allocated() if bench.device.startswith("cuda") else process_rss()
    model = qwen3_shaped(bench.shape, bench.dtype, bench.device, bench.seed)
    diffs = random_dense_diffs(model, bench.n_diffs, bench.seed)
    tokenizer = word_tokenizer(model.config.vocab_size)
    prompts = _prompts(bench, model.config.vocab_size)
    base_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    delta_bytes = sum(t.numel() * t.element_size() for d in diffs for t in d.dense.values())
    delta_params = sum(t.numel() for t in diffs[0].dense.values())
    parameters = sum(p.numel() for p in model.parameters())

    engine = Engine(model, tokenizer, max_batch=bench.rows)
    warm = replace(bench, n_diffs=1, prompts_per_diff=1, max_new_tokens=2)
    engine.chat(diffs[:2], prompts[:2], max_new_tokens=2)  # first-call costs (threads, allocator) out of the timing
    batched = batched_way(engine, diffs, prompts, bench, _held_since(start, bench.device), delta_params)
    uninstall_multi_diff(model)  # the naive way runs the plain transformers model
    merge_per_diff_way(model, tokenizer, diffs[:1], prompts[:1], warm, 0)
    naive = merge_per_diff_way(model, tokenizer, diffs, prompts, bench, _held_since(start, bench.device))
    return DenseReport(bench, parameters, base_bytes, delta_bytes, (batched, naive))
