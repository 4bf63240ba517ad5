"""Metered access: per-case counts of what a method ran on M and M′, access classes (a black-box
method is stopped when it reads inside), and the per-case token budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from random_models import random_lora, random_model, random_tokenizer
from test_evaluate_cli import EXAMPLE, run_cli, small_suite  # noqa: F401 - the fixture is used by name
from wdqa.core.engine import Engine
from wdqa.core.lora import delta_weight
from wdqa.core.meter import AccessError, BlackBoxEngine, Meter, SealedDiff, Usage, metered


@pytest.fixture(scope="module")
def engine() -> Engine:
    tok = random_tokenizer()
    return Engine(random_model(len(tok)), tok)


def test_chat_counts_each_rows_tokens_to_its_diff_and_rows_without_one_to_m(engine: Engine) -> None:
    diff = random_lora(engine.model, "a")
    engine.meter.reset()
    engine.chat([diff, None], ["tell me about lava", "tell me about lava"], max_new_tokens=4)
    prompt = len(engine.tokenizer(engine.render([{"role": "user", "content": "tell me about lava"}]), add_special_tokens=False)["input_ids"])
    a, base = engine.meter.by_diff["a"], engine.meter.by_diff[None]
    assert (a.forward_tokens_diff, base.forward_tokens_base, a.forward_tokens_base, base.forward_tokens_diff) == (prompt, prompt, 0, 0)
    assert 0 < a.generated_tokens_diff <= 4 and 0 < base.generated_tokens_base <= 4


def test_a_calls_shared_counts_are_split_over_its_cases_and_add_up() -> None:
    meter = Meter()
    meter.count(None, forward_tokens_base=7, white_box_reads=3)
    meter.count(random_lora(random_model(40), "x"), forward_tokens_diff=5)
    cases = meter.per_case(["x", "y"])
    assert [c.forward_tokens_base for c in cases] == [4, 3] and [c.forward_tokens_diff for c in cases] == [5, 0]
    assert sum(c.tokens for c in cases) == 12 and [c.white_box_reads for c in cases] == [2, 1]


def test_a_sealed_diff_runs_in_chat_but_its_tensors_are_refused(engine: Engine) -> None:
    diff = random_lora(engine.model, "a")
    sealed = SealedDiff(diff, "mine.py")
    assert engine.chat([sealed], ["lava"], max_new_tokens=3) == engine.chat([diff], ["lava"], max_new_tokens=3)
    with pytest.raises(AccessError, match=r"mine.py declares black-box access but read the weight diff's `lora`.*access = \"white-box\""):
        sealed.lora  # noqa: B018


def test_a_black_box_engine_refuses_forward_and_the_logit_lens(engine: Engine) -> None:
    engine.access, engine.method_name = "black-box", "mine.py"
    try:
        with pytest.raises(AccessError, match=r"called engine.forward\(\)"):
            engine.forward([None], ["lava"])
        with pytest.raises(AccessError, match=r"called engine.logit_lens\(\)"):
            engine.logit_lens(torch.zeros(32))
    finally:
        engine.access = "white-box"


def test_a_black_box_method_gets_an_engine_that_only_replies(engine: Engine) -> None:
    view = BlackBoxEngine(engine, "mine.py")
    assert view.chat([None], ["lava"], max_new_tokens=2) == engine.chat([None], ["lava"], max_new_tokens=2)
    assert view.tokenizer is engine.tokenizer and view.render([{"role": "user", "content": "hi"}])
    with pytest.raises(AccessError, match=r"mine.py declares black-box access but used engine.model \(a white-box read\)"):
        view.model  # noqa: B018
    with pytest.raises(AccessError, match=r"used engine.forward\(\).*engine.chat, engine.device"):
        view.forward([None], ["lava"])
    with pytest.raises(AccessError, match=r"cannot change engine.access"):
        view.access = "white-box"


def test_the_methods_reads_of_diff_tensors_are_counted_and_the_engines_are_not(engine: Engine) -> None:
    engine.meter.reset()
    diff = metered(random_lora(engine.model, "a"), engine.meter)
    engine.chat([diff], ["lava"], max_new_tokens=2)  # the engine reads every module to apply it
    assert engine.meter.by_diff["a"].diff_reads == 0
    delta_weight(diff, diff.modules[0])
    assert engine.meter.by_diff["a"].diff_reads == 1


BLACK_BOX_PEEKING = '''
class Peeks:
    name = "peeks"
    access = "black-box"

    def answer(self, cases, engine):
        return [str(len(c.diff.lora)) for c in cases]
'''


def in_process(small_suite: Path, spec: str, request: str) -> object:  # noqa: F811
    """What the method's process replies to answering two test cases (`answer`) or fitting on
    three (`fit`); its host runs in this process."""
    from wdqa.benchmark.worker.child import MethodHost
    from wdqa.benchmark.worker.protocol import Answer, Fit, LoadMethod, LoadModel, OpenSuite
    from wdqa.core.model_options import ModelOptions
    from wdqa.core.suite import Suite

    host = MethodHost()
    for setup in (
        LoadMethod(spec, "salient-words", []),
        OpenSuite(str(small_suite / "suite")),
        LoadModel(str(small_suite / "base"), None, ModelOptions(device="cpu").as_record(), None, 8),
    ):
        host.handle(setup)
    ids = Suite.load(small_suite / "suite").case_ids("test")
    return host.handle(Answer("test", ids[:2], [], []) if request == "answer" else Fit("test", ids[:3], ["a", "b", "c"], None))


def answer_in_process(small_suite: Path, spec: str) -> object:  # noqa: F811
    return in_process(small_suite, spec, "answer")


def fit_in_process(small_suite: Path, spec: str) -> object:  # noqa: F811
    return in_process(small_suite, spec, "fit")


REACHES_THE_MODEL = '''
class Reaches:
    name = "reaches"
    access = "black-box"

    def answer(self, cases, engine):
        return [str(sum(p.numel() for p in engine.model.parameters())) for c in cases]
'''


def test_a_black_box_method_that_reaches_for_the_model_is_stopped(small_suite: Path, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "reaches.py").write_text(REACHES_THE_MODEL)
    reply = answer_in_process(small_suite, str(tmp_path / "reaches.py"))
    assert reply.user_error and "declares black-box access but used engine.model" in reply.error, reply


LEARNS = '''
class Learns:
    name = "learns"
    access = {access!r}

    def fit(self, cases, labels, engine):
        if {peek!r}:
            [c.diff.lora[next(iter(c.diff.lora))] for c in cases]  # one tensor of each case's diff
        engine.chat([c.diff for c in cases], [c.question for c in cases], max_new_tokens=2)

    def answer(self, cases, engine):
        return ["lava" for c in cases]
'''


def test_fitting_is_metered_and_a_black_box_fit_is_sealed(small_suite: Path, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "learns.py").write_text(LEARNS.format(access="white-box", peek=True))
    done = fit_in_process(small_suite, str(tmp_path / "learns.py"))
    usage = Usage.from_dict(done.usage)
    assert usage.diff_reads == 3 and usage.forward_tokens_diff > 0 and usage.generated_tokens_diff > 0, done
    (tmp_path / "peeks_in_fit.py").write_text(LEARNS.format(access="black-box", peek=True))
    failed = fit_in_process(small_suite, str(tmp_path / "peeks_in_fit.py"))
    assert failed.user_error and "declares black-box access but read the weight diff's `lora`" in failed.error, failed
    (tmp_path / "replies_only.py").write_text(LEARNS.format(access="black-box", peek=False))
    assert Usage.from_dict(fit_in_process(small_suite, str(tmp_path / "replies_only.py")).usage).generated_tokens_diff > 0


def test_a_black_box_method_that_reads_the_diff_is_stopped_with_the_reason(small_suite: Path, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "peeks.py").write_text(BLACK_BOX_PEEKING)
    reply = answer_in_process(small_suite, str(tmp_path / "peeks.py"))
    assert reply.user_error and "declares black-box access but read the weight diff's `lora`" in reply.error, reply


RETURNS_TENSORS = '''
class Tensors:
    name = "tensors"

    def answer(self, cases, engine):
        return [engine.forward([c.diff], [c.question]).logits[0, -1] for c in cases]
'''


def test_a_method_returning_tensors_fails_with_the_type_it_returned(small_suite: Path, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "tensors.py").write_text(RETURNS_TENSORS)
    reply = answer_in_process(small_suite, str(tmp_path / "tensors.py"))
    assert "answer() returned Tensor for case test/" in reply.error and "expected str" in reply.error, reply


def test_each_answered_case_comes_with_its_own_counts(small_suite: Path) -> None:  # noqa: F811
    reply = answer_in_process(small_suite, EXAMPLE)
    usage = [Usage.from_dict(u) for u in reply.usage]
    assert len(usage) == 2 and all(u.forward_tokens_diff > 0 and u.generated_tokens_diff > 0 and u.forward_tokens_base == 0 for u in usage)


def test_a_case_over_the_token_budget_fails_with_its_counts() -> None:
    from wdqa.benchmark.records import AnswerRecord
    from wdqa.benchmark.runner import over_budget

    record = AnswerRecord("test/a", "test", "a", "lava", usage=Usage(forward_tokens_diff=30, generated_tokens_diff=20).as_dict())
    assert over_budget(record, 50) == record
    failed = over_budget(record, 49)
    assert failed.answer is None and failed.error.startswith("over budget: the case ran 50 tokens") and "--budget-tokens 49" in failed.error


@pytest.mark.slow  # ~35 s: three runs of `wdqa evaluate`, each starting a method process and the offline judge
def test_a_black_box_method_that_reads_the_diff_fails_each_case_with_the_reason(small_suite: Path, tmp_path: Path) -> None:  # noqa: F811
    method = tmp_path / "peeks.py"
    method.write_text(BLACK_BOX_PEEKING)
    result = run_cli("evaluate", str(method), "--suite", str(small_suite / "suite"), "--baselines", "none", "--limit", "2", "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in next((tmp_path / "runs").rglob("answers.jsonl")).read_text().splitlines()]
    assert len(records) == 2 and all("peeks.py declares black-box access but read the weight diff's `lora`" in r["error"] for r in records)


@pytest.mark.slow
def test_cases_record_their_counts_and_a_case_over_the_token_budget_fails(small_suite: Path, tmp_path: Path) -> None:  # noqa: F811
    args = ["evaluate", EXAMPLE, "--suite", str(small_suite / "suite"), "--baselines", "none", "--limit", "2"]
    result = run_cli(*args, "--runs-dir", str(tmp_path / "free"))
    assert result.exit_code == 0, result.output
    free = [json.loads(line) for line in next((tmp_path / "free").rglob("answers.jsonl")).read_text().splitlines()]
    usage = [Usage.from_dict(r["usage"]) for r in free]
    assert all(u.forward_tokens_diff > 0 and u.generated_tokens_diff > 0 and u.forward_tokens_base == 0 for u in usage)
    manifest = json.loads(next((tmp_path / "free").rglob("manifest.json")).read_text())
    assert manifest["usage"]["cases"] == 2 and manifest["usage"]["forward_tokens_diff"] == sum(u.forward_tokens_diff for u in usage)
    assert manifest["method"]["access"] == "black-box"

    budget = min(u.tokens for u in usage) - 1  # every case needs more
    result = run_cli(*args, "--budget-tokens", str(budget), "--runs-dir", str(tmp_path / "tight"))
    assert result.exit_code == 0 and "2 case(s) failed" in result.output, result.output
    tight = [json.loads(line) for line in next((tmp_path / "tight").rglob("answers.jsonl")).read_text().splitlines()]
    assert all(r["error"].startswith("over budget") and f"--budget-tokens {budget}" in r["error"] for r in tight)
    assert json.loads(next((tmp_path / "tight").rglob("manifest.json")).read_text())["counts"]["over_budget"] == 2


def test_the_report_shows_each_methods_access_class_and_tokens_per_case() -> None:
    from wdqa.benchmark.records import ScoreRecord
    from wdqa.benchmark.run_manifest import RunManifest, RunMethod, RunSuite
    from wdqa.leaderboard.report import render_latex, render_markdown
    from wdqa.leaderboard.results import ResultSet, SuiteRef

    def result(method: str, access: str | None, usage: dict[str, int]) -> ResultSet:
        manifest = RunManifest(RunMethod(method, access=access), RunSuite("tiny"), usage=usage)
        records = (ScoreRecord("test/a", "test", "a", "lava", "lava", 5, "judge", "v1"),)
        return ResultSet(method, False, "tiny-base", SuiteRef("tiny", "2", "", ""), "judge", "v1", "judge@v1", records, manifests=(manifest,))

    metered = Usage(forward_tokens_diff=300, generated_tokens_diff=100).as_dict() | {"cases": 2}
    table = render_markdown([result("reads", "white-box", metered), result("older", None, {})])
    assert "| Access | Tokens / case |" in table
    assert "| white-box | 200 |" in table and "| — | — |" in table  # a run from before metering shows neither
    latex = render_latex([result("reads", "white-box", metered), result("older", None, {})])
    assert r"$n$ & Access & Tokens / case \\" in latex and r"& white-box & 200 \\" in latex and r"& -- & -- \\" in latex
    assert "Access" not in render_latex([result("older", None, {})])  # published scores: the paper's columns only
