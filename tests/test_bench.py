"""The evaluation benchmark measures both ways on the same diffs (figures, not timings, are tested)."""

from __future__ import annotations

from random_models import random_lora, random_model, random_tokenizer
from wdqa.benchmark.bench import bench_batched, bench_peft_sequential, matmul_flops
from wdqa.benchmark.engine import Engine


def test_both_ways_answer_every_case_and_count_flops():
    tok = random_tokenizer()
    model = random_model(len(tok))
    diffs = [random_lora(model, f"d{i}", seed=i) for i in range(4)]
    engine = Engine(model, tok)
    batched = bench_batched(engine, diffs, "tell me about lava", 5)
    naive = bench_peft_sequential(engine, diffs, "tell me about lava", 5)
    assert batched.cases == naive.cases == 4
    assert batched.flops > 0 and naive.flops > 0 and naive.new_tokens > 0
    assert matmul_flops(64, seconds=0.05) > 1e6
