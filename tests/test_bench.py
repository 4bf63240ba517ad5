"""The evaluation benchmark measures both ways on the same diffs (figures, not timings, are tested)."""

from __future__ import annotations

from random_models import random_lora, random_model, random_tokenizer
from wdqa.benchmark.bench import bench_batched, bench_peft_sequential
from wdqa.core.engine import Engine
from wdqa.core.measure import matmul_flops


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


def test_a_method_in_its_own_process_gives_the_answers_it_gives_in_this_one(micro_suite):
    from wdqa.benchmark.bench import bench_method_process
    from wdqa.core.models import load_base_model
    from wdqa.core.suite import Suite

    suite = Suite.load(micro_suite)
    engine = Engine(*load_base_model(suite.base_model, suite.base_model_revision))
    ids = suite.case_ids("train")
    cost = bench_method_process(engine, suite, "train", ids, "wdqa.benchmark.bench:AskTheQuestion", 4, None, None, repeats=1)
    assert cost.cases == 6 and cost.same_answers
    assert cost.in_process_s > 0 and cost.own_process_s > 0 and cost.startup_s > 0


def test_a_forked_method_process_gives_the_answers_a_fresh_one_gives(micro_suite):
    from wdqa.benchmark.bench import bench_process_start
    from wdqa.core.suite import Suite

    suite = Suite.load(micro_suite)
    start = bench_process_start(suite, "train", suite.case_ids("train")[:2], "wdqa.benchmark.bench:AskTheQuestion", None, None, repeats=1)
    assert start.same_answers and start.fresh_s > 0 and start.forked_s > 0 and start.zygote_s > 0
