"""Speed measurements that print figures side by side (never timed tests): batched multi-diff
evaluation against one PEFT model per diff, a method answering in this process against in its
own process (what `wdqa evaluate` does), and that process started fresh against forked from a
zygote.

Owns these benches; the code measured lives in engine.py and lora.py, the instruments (FLOP/s,
peak memory) in measure.py.
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from ..core.engine import Engine
from ..core.lora import uninstall_multi_diff
from ..core.measure import forward_flops
from ..core.peft_export import export_peft_adapter
from ..core.suite import Suite
from ..core.types import Case, WeightDiff
from .method import load_method_spec
from .worker import MethodProcess, MethodSpec
from .worker.zygote import Zygote


@dataclass
class EvalSpeed:
    label: str
    cases: int
    seconds: float
    new_tokens: int
    flops: float

    @property
    def cases_per_s(self) -> float:
        return self.cases / self.seconds

    @property
    def flop_per_s(self) -> float:
        return self.flops / self.seconds


def _prompt_tokens(engine: Engine, questions: list[str]) -> int:
    return sum(len(engine.tokenizer(engine.render([{"role": "user", "content": q}]))["input_ids"]) for q in questions)


def bench_batched(engine: Engine, diffs: list[WeightDiff], question: str, max_new_tokens: int) -> EvalSpeed:
    t0 = time.perf_counter()
    before = engine.stats.new_tokens
    engine.chat(diffs, [question] * len(diffs), max_new_tokens=max_new_tokens)
    seconds = time.perf_counter() - t0
    new = engine.stats.new_tokens - before
    tokens = _prompt_tokens(engine, [question] * len(diffs)) + new
    return EvalSpeed("batched multi-diff", len(diffs), seconds, new, forward_flops(engine.model, tokens))


def plain_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of an Engine's base model with its MultiDiffLinear wrappers removed, for PEFT."""
    clone = copy.deepcopy(model)
    uninstall_multi_diff(clone)
    return clone


@dataclass
class PeftLoop:
    seconds: float
    answers: list[str]
    new_tokens: int
    prompt_tokens: int


def peft_one_at_a_time(
    base: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, diffs: Sequence[WeightDiff], prompt: str, max_new_tokens: int
) -> PeftLoop:
    """The naive way: export each diff as a PEFT adapter, load it, generate greedily, unload.

    `base` must be a plain transformers model (see `plain_copy`); `prompt` is already rendered.
    Export happens before the clock starts: a user would have adapter folders on disk already.
    """
    from peft import PeftModel

    enc = tokenizer([prompt], return_tensors="pt", add_special_tokens=False).to(next(base.parameters()).device)
    prompt_len = int(enc["input_ids"].shape[1])
    with tempfile.TemporaryDirectory(prefix="wdqa-bench-") as tmp:
        folders = [export_peft_adapter(d, Path(tmp) / f"a{i}", "bench") for i, d in enumerate(diffs)]
        answers, new_tokens = [], 0
        t0 = time.perf_counter()
        for folder in folders:
            model = PeftModel.from_pretrained(base, folder)
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            new_tokens += int(out.shape[1] - prompt_len)
            answers.append(str(tokenizer.decode(out[0, prompt_len:], skip_special_tokens=True)).strip())
            base = model.unload()
        seconds = time.perf_counter() - t0
    return PeftLoop(seconds, answers, new_tokens, prompt_len * len(diffs))


def bench_peft_sequential(engine: Engine, diffs: list[WeightDiff], question: str, max_new_tokens: int) -> EvalSpeed:
    """The naive way: each diff loaded into a PEFT model from its adapter folder, one case at a time."""
    base = plain_copy(engine.model)
    prompt = engine.render([{"role": "user", "content": question}])
    loop = peft_one_at_a_time(base, engine.tokenizer, diffs, prompt, max_new_tokens)
    tokens = loop.prompt_tokens + loop.new_tokens
    return EvalSpeed("one PEFT model per diff", len(diffs), loop.seconds, loop.new_tokens, forward_flops(base, tokens))


class AskTheQuestion:
    """The bench's method (`wdqa.benchmark.bench:AskTheQuestion`): M′ answers the suite's question,
    20 new tokens, every case of a call in one batched pass."""

    name = "ask-the-question"
    oracle = False

    def answer(self, cases: Sequence[Case], engine: Engine) -> list[str]:
        return engine.chat([c.diff for c in cases], [c.question for c in cases], max_new_tokens=20)


@dataclass
class ProcessCost:
    """The same cases answered by a method in this process and in its own process."""

    cases: int
    in_process_s: float  # median over the repeats
    own_process_s: float
    startup_s: float  # starting the process and loading the method, the suite and the base model there
    same_answers: bool

    @property
    def ratio(self) -> float:
        return self.own_process_s / self.in_process_s


def bench_method_process(
    engine: Engine, suite: Suite, split: str, diff_ids: Sequence[str], spec: str, batch_size: int,
    device: str | None, threads: int | None, repeats: int = 3,
) -> ProcessCost:
    """Answer `diff_ids` in batches with `spec` here (the runner before methods had their own
    process) and through a MethodProcess, alternating the two ways `repeats` times (so a busy
    machine slows both alike) after one untimed warm-up call each."""
    batches = [list(diff_ids[i : i + batch_size]) for i in range(0, len(diff_ids), batch_size)]
    method = load_method_spec(spec).method

    def here() -> list[str]:
        return [a for b in batches for a in method.answer(list(suite.cases(split, diff_ids=b)), engine)]

    def there(process: MethodProcess) -> list[str]:
        answers: list[str] = []
        for b in batches:
            call = process.answer(split, b, None, None)
            if call.answers is None:
                raise RuntimeError(f"{spec} failed in its own process: {call.error}")
            answers += call.answers
        return answers

    t0 = time.perf_counter()
    with MethodProcess.start(MethodSpec(spec)) as process:
        process.open(suite, device, threads)
        process.load_model()
        startup = time.perf_counter() - t0
        method.answer(list(suite.cases(split, diff_ids=diff_ids[:2])), engine)
        process.answer(split, diff_ids[:2], None, None)
        times: dict[str, list[float]] = {"here": [], "there": []}
        for _ in range(repeats):
            t0 = time.perf_counter()
            mine = here()
            times["here"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            theirs = there(process)
            times["there"].append(time.perf_counter() - t0)
    return ProcessCost(len(diff_ids), statistics.median(times["here"]), statistics.median(times["there"]), startup, mine == theirs)


@dataclass
class StartCost:
    """Starting a method's process until its base model is loaded, fresh or forked from a zygote."""

    fresh_s: float  # median over the repeats
    forked_s: float
    zygote_s: float  # the first fork, which waits for the zygote's own imports: once per run
    same_answers: bool

    @property
    def ratio(self) -> float:
        return self.fresh_s / self.forked_s


def bench_process_start(
    suite: Suite, split: str, diff_ids: Sequence[str], spec: str, device: str | None, threads: int | None, repeats: int = 3,
) -> StartCost:
    """Start `spec`'s process `repeats` times each way, alternating (a busy machine slows both
    alike), each loading the method, the suite and the base model and then answering `diff_ids`."""

    def start(zygote: Zygote | None) -> tuple[float, tuple[str, ...]]:
        t0 = time.perf_counter()
        with MethodProcess.start(MethodSpec(spec), zygote=zygote) as process:
            process.open(suite, device, threads)
            process.load_model()
            seconds = time.perf_counter() - t0
            call = process.answer(split, list(diff_ids), None, None)
        if call.answers is None:
            raise RuntimeError(f"{spec} failed in its own process: {call.error}")
        return seconds, tuple(call.answers)

    times: dict[str, list[float]] = {"fresh": [], "forked": []}
    with Zygote.start() as zygote:
        first, answers = start(zygote)
        seen = {answers}
        for _ in range(repeats):
            for way, z in (("fresh", None), ("forked", zygote)):
                seconds, answers = start(z)
                times[way].append(seconds)
                seen.add(answers)
    return StartCost(statistics.median(times["fresh"]), statistics.median(times["forked"]), first, len(seen) == 1)
