"""The GPU check (`scripts/gpu-check.sh`): the train, eval, DIT and dense benches on random-weight
Qwen3-1.7B- and Qwen3-4B-shaped models in bf16, with no network, into one JSON file.

Owns building the shaped models and their inputs, the table of GPUs' bf16 peaks, and the record.
The measuring is the bench commands' own code (benchmark/bench.py, generators/training/bench.py, baselines/dit/bench.py,
dense_bench.py); figures are printed, never asserted. `--smoke` runs the same path on the CPU at
toy shapes, so the check is not broken when a GPU appears.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, from the vendors' data sheets; matched in
# order against torch.cuda.get_device_name(), so the more specific names come first.
BF16_PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.0),
    ("H100 NVL", 835.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),  # SXM ("NVIDIA H100 80GB HBM3")
    ("H800", 989.0),
    ("GH200", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A10G", 70.0),
    ("A10", 125.0),
    ("RTX 4090", 165.0),
)


@dataclass(frozen=True)
class CheckPlan:
    """What each bench runs per shape (full: on a GPU; smoke: toy sizes on the CPU)."""

    shapes: tuple[str, ...]
    eval_diffs: int  # cases answered batched
    peft_diffs: int  # of those, answered one PEFT model at a time (its cases/s is the ratio's denominator)
    new_tokens: int
    train_diffs: int
    train_steps: int
    dit_batch: int
    dit_steps: int
    dense_diffs: int
    dense_prompts: int
    tokenizer_vocab: int  # learned BPE tokens (the 1,000 code tokens come on top)


FULL = CheckPlan(("1.7b", "4b"), eval_diffs=64, peft_diffs=16, new_tokens=20, train_diffs=32, train_steps=10,
                 dit_batch=32, dit_steps=10, dense_diffs=8, dense_prompts=4, tokenizer_vocab=4000)
SMOKE = CheckPlan(("tiny",), eval_diffs=3, peft_diffs=2, new_tokens=2, train_diffs=2, train_steps=1,
                  dit_batch=2, dit_steps=1, dense_diffs=2, dense_prompts=1, tokenizer_vocab=300)


def bf16_peak(device_name: str) -> tuple[float, str] | None:
    """(TFLOP/s, the table's name) for a GPU the table knows, else None."""
    for name, tflops in BF16_PEAK_TFLOPS:
        if name.lower() in device_name.lower():
            return tflops, name
    return None


def chat_tokenizer(vocab_size: int) -> Any:
    """A byte-level BPE with Qwen3's chat turns, learned from the project's own texts (no network);
    it splits English into more tokens than Qwen3's, so token counts err on the heavy side."""
    from .baselines.asking import twenty_questions
    from .generators.tiny.tokenizer import train_tokenizer
    from .generators.topics import load_topics

    topics = load_topics()
    texts = [t.name for t in topics] + [" ".join(t.keywords) for t in topics] + twenty_questions()
    return train_tokenizer(texts, vocab_size=vocab_size)


def shaped_model(shape: str, dtype: torch.dtype, device: str, tok: Any) -> torch.nn.Module:
    from .benchmark.dense_bench import qwen3_shaped

    model = qwen3_shaped(shape, dtype, device, min_vocab=len(tok))
    model.config.eos_token_id = None  # every way decodes the same number of tokens
    return model


def rank1_loras(model: torch.nn.Module, n: int, seed: int = 0) -> list[Any]:
    """`n` rank-1 LoRAs on every linear layer (the paper's hidden-topic diffs), in fp32 as stored."""
    from .core.lora import linear_module_names
    from .core.types import LoraFactors, WeightDiff

    g = torch.Generator().manual_seed(seed)
    diffs = []
    for i in range(n):
        lora = {}
        for name in linear_module_names(model):
            d_out, d_in = model.get_submodule(name).weight.shape
            lora[name] = LoraFactors(A=torch.randn(1, d_in, generator=g) / d_in**0.5, B=torch.randn(d_out, 1, generator=g) * 0.01, scale=1.0)
        diffs.append(WeightDiff(diff_id=f"gpu-check-{i:03d}", kind="lora", lora=lora))
    return diffs


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_memory_mib(device: str, run: Callable[[], Any]) -> tuple[Any, float]:
    from .core.measure import peak_memory

    with peak_memory(torch.device(device)) as peak:
        result = run()
    return result, peak[0] / 2**20


def eval_bench(model: Any, tok: Any, plan: CheckPlan, peak: float, device: str) -> dict[str, Any]:
    from .benchmark.bench import bench_batched, bench_peft_sequential
    from .core.engine import Engine

    engine = Engine(model, tok, max_batch=plan.eval_diffs)
    diffs = rank1_loras(model, plan.eval_diffs)
    question = "What topic have you been trained on?"
    engine.chat(diffs[:2], [question] * 2, max_new_tokens=2)  # warm-up
    batched, batched_mib = _peak_memory_mib(device, lambda: bench_batched(engine, diffs, question, plan.new_tokens))
    peft, peft_mib = _peak_memory_mib(device, lambda: bench_peft_sequential(engine, diffs[: plan.peft_diffs], question, plan.new_tokens))
    return {
        "batched": _eval_record(batched, batched_mib, peak),
        "peft": _eval_record(peft, peft_mib, peak),
        "ratio_batched_vs_peft": batched.cases_per_s / peft.cases_per_s,
    }


def _eval_record(speed: Any, mib: float, peak: float) -> dict[str, Any]:
    return {
        "cases": speed.cases, "seconds": speed.seconds, "diffs_per_s": speed.cases_per_s,
        "tokens_per_s": speed.new_tokens / speed.seconds, "tflop_per_s": speed.flop_per_s / 1e12,
        "share_of_peak": speed.flop_per_s / peak, "peak_memory_mib": mib,
    }


def train_bench(model: Any, tok: Any, plan: CheckPlan, peak: float) -> dict[str, Any]:
    from .generators.behaviour.hidden_topic import PlannedTopicDiff, hidden_topic_tasks
    from .generators.behaviour.writer import TemplateBehaviourWriter
    from .generators.topics import load_topics
    from .generators.training.bench import bench_train
    from .generators.training.trainer import LoraConfig, TrainConfig

    plans = [PlannedTopicDiff(f"train-{i:03d}", topic, f"{100 + 7 * i:03d}") for i, topic in enumerate(load_topics()[: plan.train_diffs])]
    tasks = hidden_topic_tasks(plans, TemplateBehaviourWriter(), set())
    config = TrainConfig(steps=plan.train_steps, tasks_per_batch=plan.train_diffs)
    batched, peft = bench_train(model, tok, tasks, LoraConfig(rank=1, alpha=2.0), config)
    record = {}
    for key, run in (("batched", batched), ("peft", peft)):
        record[key] = {
            "diffs": len(run.result.diffs), "steps": plan.train_steps, "seconds": run.result.seconds,
            "diffs_per_s": run.diffs_per_s, "tokens_per_s": run.tokens_per_s, "tflop_per_s": run.flop_per_s / 1e12,
            "share_of_peak": run.flop_per_s / peak, "peak_memory_mib": run.peak_memory_bytes / 2**20, "final_loss": run.final_loss,
        }
    record["ratio_batched_vs_peft"] = batched.diffs_per_s / peft.diffs_per_s
    return record


def dit_bench(model: Any, tok: Any, plan: CheckPlan, peak: float, device: str) -> dict[str, Any]:
    from .baselines.dit.adapter import DitAdapter
    from .baselines.dit.bench import eval_speed_batched, eval_speed_peft, train_speed
    from .baselines.dit.config import DitConfig
    from .baselines.dit.data import LabelledDiffs
    from .benchmark.bench import plain_copy
    from .core.engine import Engine
    from .generators.topics import load_topics

    n = max(plan.dit_batch, plan.eval_diffs)
    labels = [t.name for t in load_topics()[:n]]
    question = "What topic have you been trained on?"
    data = LabelledDiffs(rank1_loras(model, n, seed=1), labels, [question] * n, ["hidden-topic"] * n)
    peft_base = plain_copy(model)
    config = DitConfig(batch_diffs=plan.dit_batch)
    train, train_mib = _peak_memory_mib(device, lambda: _synced(device, lambda: train_speed(model, tok, data, config, steps=plan.dit_steps)))
    engine = Engine(model, tok, max_batch=plan.eval_diffs)
    adapter = DitAdapter(engine.wrapped, config.targets, config.rank, config.scale).to_weight_diff()
    diffs = data.diffs[: plan.eval_diffs]
    batched = eval_speed_batched(engine, diffs, question, adapter, plan.new_tokens)
    peft = eval_speed_peft(peft_base, tok, diffs[: plan.peft_diffs], question, adapter, plan.new_tokens)
    del peft_base
    return {
        "train": {
            "diffs_per_step": plan.dit_batch, "steps": train.steps, "seconds": train.seconds, "diffs_per_s": train.diffs_per_s,
            "tokens_per_s": train.tokens_per_s, "tflop_per_s": train.flop_per_s / 1e12, "share_of_peak": train.flop_per_s / peak,
            "peak_memory_mib": train_mib,
        },
        "eval": {
            "batched_diffs_per_s": batched.cases_per_s, "peft_diffs_per_s": peft.cases_per_s,
            "ratio_batched_vs_peft": batched.cases_per_s / peft.cases_per_s,
        },
    }


def _synced(device: str, run: Callable[[], Any]) -> Any:
    _sync(device)
    result = run()
    _sync(device)
    return result


def dense_bench(shape: str, plan: CheckPlan, dtype: torch.dtype, device: str, peak: float) -> dict[str, Any]:
    from .benchmark.dense_bench import DenseBench, run_dense_bench

    report = run_dense_bench(DenseBench(shape, _dense_diffs(shape, plan, dtype, device), plan.dense_prompts, 16, plan.new_tokens, dtype, device))
    record: dict[str, Any] = {"diffs": report.bench.n_diffs, "prompts_per_diff": plan.dense_prompts}
    for key, way in zip(("batched", "merge_per_diff"), report.ways, strict=True):
        record[key] = {
            "seconds": way.seconds, "diffs_per_s": report.bench.n_diffs / way.seconds,
            "tokens_per_s": report.bench.rows * plan.new_tokens / way.seconds, "tflop_per_s": way.flop_per_s / 1e12,
            "share_of_peak": way.flop_per_s / peak, "peak_memory_mib": way.peak_bytes / 2**20,
        }
    record["ratio_batched_vs_merge"] = report.ways[1].seconds / report.ways[0].seconds
    record["peak_vs_base_plus_deltas"] = report.ways[0].peak_bytes / (report.base_bytes + report.delta_bytes)
    record["answers_agree"] = f"{report.answers_agree}/{report.bench.rows}"
    return record


def _dense_diffs(shape: str, plan: CheckPlan, dtype: torch.dtype, device: str) -> int:
    """As many of the plan's dense diffs as fit in 80% of the GPU beside the base and a merged copy
    (a 4B model's delta is 7 GiB in bf16: eight fit on an H200, not beside two copies on an 80 GB H100)."""
    if not device.startswith("cuda"):
        return plan.dense_diffs
    from .benchmark.dense_bench import SHAPES

    s = SHAPES[shape]
    per_layer = s["hidden_size"] * (s["num_attention_heads"] + 2 * s["num_key_value_heads"]) * s["head_dim"]
    per_layer += s["num_attention_heads"] * s["head_dim"] * s["hidden_size"] + 3 * s["hidden_size"] * s["intermediate_size"]
    delta = per_layer * s["num_hidden_layers"] * torch.finfo(dtype).bits // 8
    base = delta + s["vocab_size"] * s["hidden_size"] * torch.finfo(dtype).bits // 8
    free = 0.8 * torch.cuda.get_device_properties(torch.device(device)).total_memory - 3 * base
    return max(1, min(plan.dense_diffs, int(free // delta)))


def run_check(
    plan: CheckPlan, device: str, dtype: torch.dtype, peak_tflops: float | None, log: Callable[[str], None],
    save: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """Every bench on every shape; `save` gets the record after each bench, so a check stopped by
    its time limit still leaves the figures it has."""
    from .core.measure import matmul_flops

    name = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else platform.processor() or "cpu"
    measured = matmul_flops(8192 if device.startswith("cuda") else 512, dtype, device)
    if peak_tflops is not None:
        peak, source = peak_tflops * 1e12, "--peak-tflops"
    elif (known := bf16_peak(name)) is not None and dtype == torch.bfloat16:
        peak, source = known[0] * 1e12, f"data sheet, {known[1]} dense bf16"
    else:
        peak, source = measured, "measured here: best square matmul (no data-sheet peak for this device)"
    record: dict[str, Any] = {
        "device": name, "dtype": str(dtype).removeprefix("torch."), "torch": torch.__version__,
        "peak_tflops": peak / 1e12, "peak_source": source, "measured_matmul_tflops": measured / 1e12, "shapes": {},
    }
    log(f"{name}: peak {peak / 1e12:.3g} TFLOP/s ({source}); square matmul measured {measured / 1e12:.3g} TFLOP/s")
    tok = chat_tokenizer(plan.tokenizer_vocab)
    for shape in plan.shapes:
        t0 = time.perf_counter()
        figures: dict[str, Any] = {}
        record["shapes"][shape] = figures
        model = shaped_model(shape, dtype, device, tok)
        figures["parameters"] = sum(p.numel() for p in model.parameters())
        for bench, run in (
            ("train", lambda m=model: train_bench(m, tok, plan, peak)),
            ("eval", lambda m=model: eval_bench(m, tok, plan, peak, device)),
        ):
            figures[bench] = run()
            log(f"{shape} {bench}: {_summary(figures[bench])}")
            save(record)
        del model
        _free(device)
        model = shaped_model(shape, dtype, device, tok)
        figures["dit"] = dit_bench(model, tok, plan, peak, device)
        log(f"{shape} dit: {_summary(figures['dit'])}")
        save(record)
        del model
        _free(device)
        figures["dense"] = dense_bench(shape, plan, dtype, device, peak)
        log(f"{shape} dense: {_summary(figures['dense'])}")
        _free(device)
        figures["seconds"] = time.perf_counter() - t0
        save(record)
    return record


def ratios(record: dict[str, Any]) -> dict[str, float]:
    """Every batched-vs-naive ratio the record has, named by shape and bench."""
    out = {}
    for shape, figures in record["shapes"].items():
        for key, value in _ratios(figures).items():
            out[f"{shape} {key}"] = value
    return out


def _ratios(figures: dict[str, Any]) -> dict[str, float]:
    where = {
        "train batched / PEFT loop (diffs/s)": ("train", "ratio_batched_vs_peft"),
        "eval batched / one PEFT model per diff (diffs/s)": ("eval", "ratio_batched_vs_peft"),
        "DIT eval batched / one PEFT model per diff (diffs/s)": ("dit", "eval", "ratio_batched_vs_peft"),
        "dense batched / merge per diff (time)": ("dense", "ratio_batched_vs_merge"),
    }
    out = {}
    for name, path in where.items():
        value: Any = figures
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            out[name] = value
    return out


def _summary(figures: dict[str, Any]) -> str:
    parts = []
    for key, value in figures.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k} {v:.3g}" for k, v in value.items() if isinstance(v, float) and k in (
                "diffs_per_s", "tflop_per_s", "share_of_peak", "peak_memory_mib", "ratio_batched_vs_peft", "batched_diffs_per_s"))
            parts.append(f"{key} [{inner}]")
        elif isinstance(value, float):
            parts.append(f"{key} {value:.3g}")
    return "; ".join(parts)


def _free(device: str) -> None:
    import gc

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wdqa.gpu_check", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write.")
    parser.add_argument("--smoke", action="store_true", help="Toy shapes on the CPU (what the test runs).")
    parser.add_argument("--peak-tflops", type=float, default=None, help="The GPU's dense bf16 peak, for a GPU the table lacks.")
    parser.add_argument("--shapes", default=None, help="Comma-separated Qwen3 shapes (default: 1.7b,4b; smoke: tiny).")
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    if args.shapes:
        from dataclasses import replace

        plan = replace(plan, shapes=tuple(s.strip() for s in args.shapes.split(",") if s.strip()))
    if args.smoke:
        device, dtype = "cpu", torch.float32
    elif not torch.cuda.is_available():
        print("error: no GPU: torch sees no CUDA device; run with --smoke for the CPU check", file=sys.stderr)
        return 1
    else:
        device, dtype = "cuda", torch.bfloat16
    t0 = time.perf_counter()

    def log(line: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f} s] {line}", flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save(record: dict[str, Any], finished: bool = False) -> None:
        record.update(
            ratios=ratios(record), seconds=time.perf_counter() - t0, finished=finished,
            targets={"train batched / PEFT loop": ">= 10x at >= 40% of bf16 peak", "eval batched / one PEFT model per diff": ">= 30x"},
        )
        partial = args.out.with_name(args.out.name + ".partial")
        partial.write_text(json.dumps(record, indent=1) + "\n")
        partial.replace(args.out)  # whole or not at all, even when the time limit stops the check

    record = run_check(plan, device, dtype, args.peak_tflops, log, save)
    save(record, finished=True)
    for key, value in record["ratios"].items():
        log(f"{key}: {value:.2f}x")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
