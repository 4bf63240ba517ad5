"""A method runs in its own process: it holds no label of the evaluated split, and nothing it does
(exit, crash, hang, ignore signals) ends the run or stops the other cases being answered."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from test_suite_format import downgrade_to_format_1
from wdqa.benchmark.evaluate import fit_learned_method
from wdqa.benchmark.method import MethodError
from wdqa.benchmark.records import RunFolder
from wdqa.benchmark.runner import run_answer_stage
from wdqa.benchmark.worker import MethodProcess, MethodSpec
from wdqa.benchmark.worker.zygote import Zygote
from wdqa.core.suite import Suite


def run_method(path: Path, suite_root: Path, run_dir: Path, splits=("test",), batch_size=4, timeout=60.0, fit=False, zygote=None):
    """Answer the splits with the method file in its own process (forked by `zygote` if given);
    returns (stats, answers, seconds, restarts)."""
    suite = Suite.load(suite_root)
    run = RunFolder(run_dir)
    t0 = time.perf_counter()
    with MethodProcess.start(MethodSpec(str(path)), zygote=zygote) as method:
        method.open(suite)
        if fit:
            fit_learned_method(method, suite, "train", run_dir / "method-state")
        stats = run_answer_stage(method, suite, list(splits), run, batch_size, timeout)
    return stats, run.answers(), time.perf_counter() - t0, method.restarts


# ---------------------------------------------------------------- labels stay out of the method's process

SPY = """
import gc, hashlib, json, sys, warnings
from pathlib import Path

import pandas as pd

from wdqa.core.cache_dir import wdqa_cache_dir

WANTED = frozenset(json.loads(Path({hashes!r}).read_text()))  # sha256 of each label: the spy holds no label itself
LENGTHS = frozenset(json.loads(Path({lengths!r}).read_text()))


def is_label(x):
    return isinstance(x, str) and len(x) in LENGTHS and hashlib.sha256(x.encode()).hexdigest() in WANTED


def contents(obj):
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    try:
        return list(vars(obj).values())
    except TypeError:
        return []


def in_memory():
    found = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for obj in gc.get_objects():
            try:
                found.update(x for x in contents(obj) if is_label(x))
            except Exception:
                continue
    return found


def in_frames():
    found, frame = set(), sys._getframe()
    while frame is not None:
        for value in frame.f_locals.values():
            found.update(x for x in [value, *contents(value)] if is_label(x))
            for inner in contents(value):
                found.update(x for x in contents(inner) if is_label(x))
        frame = frame.f_back
    return found


def suite_roots():
    roots = {{o.root for o in gc.get_objects() if type(o).__name__ == "Suite"}}
    roots |= {{p.parent for p in (wdqa_cache_dir() / "suites").rglob("suite.json")}}
    return roots


def in_index_files(roots):
    found = set()
    for root in roots:
        for index in Path(root).glob("splits/*/index.parquet"):
            df = pd.read_parquet(index)
            for column in df.columns:
                found.update(x for x in df[column] if is_label(x))
    return found


class Spy:
    name = "spy"
    oracle = False
    fitted = ()

    def fit(self, cases, labels, engine):
        self.fitted = list(labels)

    def answer(self, cases, engine):
        roots = suite_roots()
        report = {{"memory": sorted(in_memory()), "frames": sorted(in_frames()), "files": sorted(in_index_files(roots)),
                   "roots": len(roots), "fitted": len(self.fitted), "fitted_test_labels": sorted(filter(is_label, self.fitted))}}
        return [json.dumps(report)] * len(cases)
"""


def write_spy(tmp_path: Path, labels: list[str]) -> Path:
    (tmp_path / "hashes.json").write_text(json.dumps([hashlib.sha256(t.encode()).hexdigest() for t in labels]))
    (tmp_path / "lengths.json").write_text(json.dumps(sorted({len(t) for t in labels})))
    spy = tmp_path / "spy.py"
    spy.write_text(SPY.format(hashes=str(tmp_path / "hashes.json"), lengths=str(tmp_path / "lengths.json")))
    return spy


def labels_of(root: Path, split: str = "test") -> list[str]:
    return sorted({label.text for label in Suite.load(root).labels(split).values()})


@pytest.fixture(scope="module")
def spy_reports(micro_suite, tmp_path_factory):
    """The spy is forked from a zygote, as `wdqa evaluate` forks the baselines (the format-1 spy
    below starts fresh, as the user's own method does)."""
    tmp = tmp_path_factory.mktemp("spy")
    spy = write_spy(tmp, labels_of(micro_suite))
    with Zygote.start() as zygote:
        stats, answers, _, _ = run_method(spy, micro_suite, tmp / "run", fit=True, zygote=zygote)
    assert zygote.forked == 1
    assert stats.failed == 0, stats.first_error
    return [json.loads(a.answer) for a in answers.values()]


def test_no_label_of_the_split_is_in_the_method_process_memory(spy_reports):
    assert [r["memory"] for r in spy_reports] == [[]] * 4


def test_no_label_is_in_the_method_process_stack_frames(spy_reports):
    assert [r["frames"] for r in spy_reports] == [[]] * 4


def test_the_index_files_a_method_can_find_hold_no_label(spy_reports):
    assert all(r["roots"] >= 1 and r["files"] == [] for r in spy_reports)


def test_fit_gets_the_train_labels_and_no_test_label(spy_reports):
    assert all(r["fitted"] == 6 and r["fitted_test_labels"] == [] for r in spy_reports)


def test_the_spy_finds_labels_where_they_are(micro_suite, tmp_path):
    """The spy is not blind: in a process that loaded the labels, and in a format-1 index, it finds them."""
    labels = labels_of(micro_suite)
    spec = importlib.util.spec_from_file_location("spy_control", write_spy(tmp_path, labels))
    spy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(spy)
    held = Suite.load(micro_suite).labels("test")  # noqa: F841 - the labels, in this process's memory
    assert spy.in_memory() == set(labels)
    assert spy.in_index_files([downgrade_to_format_1(micro_suite, tmp_path / "v1")]) == set(labels)


def test_a_format_1_suite_keeps_its_labels_out_of_the_method_process_memory(micro_suite, tmp_path):
    old = downgrade_to_format_1(micro_suite, tmp_path / "v1")
    assert "label" in pd.read_parquet(old / "splits" / "test" / "index.parquet").columns
    spy = write_spy(tmp_path, labels_of(old))
    stats, answers, _, _ = run_method(spy, old, tmp_path / "run")
    reports = [json.loads(a.answer) for a in answers.values()]
    assert stats.failed == 0 and all(r["memory"] == [] and r["frames"] == [] for r in reports)
    assert Suite.load(old).labels("test") == Suite.load(micro_suite).labels("test")


# ---------------------------------------------------------------- a method cannot end or stall the run

HOSTILE = """
import ctypes, os, signal, sys, time

BEHAVIOUR = {behaviour!r}


class Hostile:
    name = "hostile"
    oracle = False

    def answer(self, cases, engine):
        (case,) = cases
        what = BEHAVIOUR.get(case.diff.diff_id)
        if what == "sys.exit":
            sys.exit(0)
        if what == "os._exit":
            os._exit(0)
        if what == "sigsegv":
            os.kill(os.getpid(), signal.SIGSEGV)
        if what == "null-pointer":
            ctypes.string_at(0)
        if what == "stubborn-loop":
            signal.signal(signal.SIGALRM, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                try:
                    time.sleep(0.01)
                except BaseException:
                    pass
        if what == "native-sleep":
            ctypes.CDLL(None).sleep(1000)
        if what == "keyboard-interrupt":
            raise KeyboardInterrupt
        return engine.chat([case.diff], [case.question], max_new_tokens=4)
"""
MISBEHAVIOURS = ["sys.exit", "os._exit", "sigsegv", "null-pointer", "stubborn-loop", "native-sleep", "keyboard-interrupt"]
TIMEOUT = 5.0


@pytest.fixture(scope="module")
def hostile_run(micro_suite, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    suite = Suite.load(micro_suite)
    ids = [(s, d) for s in ("train", "val") for d in suite.case_ids(s)]  # 8 cases: 7 misbehave, 1 answers
    behaviour = {d: what for (_, d), what in zip(ids, MISBEHAVIOURS, strict=False)}
    method = tmp / "hostile.py"
    method.write_text(HOSTILE.format(behaviour=behaviour))
    with Zygote.start() as zygote:  # every restart is forked too
        stats, answers, seconds, restarts = run_method(
            method, micro_suite, tmp / "run", splits=("train", "val", "test"), batch_size=1, timeout=TIMEOUT, zygote=zygote
        )
    assert zygote.forked == 1 + restarts
    errors = {what: answers[f"{s}/{d}"].error for (s, d), what in zip(ids, MISBEHAVIOURS, strict=False)}
    return stats, answers, errors, seconds, restarts


def test_sys_exit_fails_its_case_with_the_reason(hostile_run):
    assert "SystemExit: 0" in hostile_run[2]["sys.exit"] and "called sys.exit(0)" in hostile_run[2]["sys.exit"]


def test_os_exit_fails_its_case_with_the_reason(hostile_run):
    assert hostile_run[2]["os._exit"].startswith(
        "the method process exited with status 0 during answer(); sys.exit or os._exit in the method?"
    )


@pytest.mark.parametrize("what", ["sigsegv", "null-pointer"])
def test_a_segfault_fails_its_case_with_the_signal_and_the_stack(hostile_run, what):
    error = hostile_run[2][what]
    assert error.startswith("the method process was killed by signal SIGSEGV during answer()")
    assert "hostile.py" in error  # faulthandler's stack, from the process's last lines on stderr


@pytest.mark.parametrize("what", ["stubborn-loop", "native-sleep"])
def test_a_method_that_ignores_signals_or_sleeps_in_native_code_is_killed_at_the_timeout(hostile_run, what):
    assert hostile_run[2][what] == f"no answer within {TIMEOUT:g} s; the method process was killed"


def test_a_keyboard_interrupt_raised_by_the_method_fails_its_case_only(hostile_run):
    assert "KeyboardInterrupt" in hostile_run[2]["keyboard-interrupt"]


def test_every_other_case_is_answered_by_a_fresh_process(hostile_run):
    stats, answers, _, seconds, restarts = hostile_run
    assert stats.failed == len(MISBEHAVIOURS) and stats.answered == 12 - len(MISBEHAVIOURS)
    assert all(a.answer is not None for a in answers.values() if a.error is None)
    assert restarts == 5  # os._exit, two segfaults, two kills; sys.exit and KeyboardInterrupt leave it running
    assert seconds < 300


@pytest.fixture
def ctrl_c_raises():
    """A shell starts a background job (`pytest &`, nohup) with SIGINT ignored, and Python keeps it
    ignored; Ctrl-C must raise KeyboardInterrupt here, as in an interactive run."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_in_the_runner_kills_the_method_process_and_the_run_resumes(micro_suite, tmp_path, ctrl_c_raises):
    method = tmp_path / "slow.py"
    method.write_text(
        "import time\nclass Slow:\n    name = 'slow'\n    def answer(self, cases, engine):\n"
        "        if cases[0].diff.diff_id.endswith('1'):\n            time.sleep(600)\n"
        "        return ['an answer'] * len(cases)\n"
    )
    suite = Suite.load(micro_suite)
    first_slow = next(i for i, d in enumerate(suite.case_ids("test")) if d.endswith("1"))

    def ctrl_c_soon() -> None:  # Ctrl-C reaches the runner only: the method's process has its own session
        threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT)).start()

    answered: list[int] = []

    def progress(n: int) -> None:
        answered.append(n)
        if sum(answered) == first_slow:
            ctrl_c_soon()  # while the runner waits for the slow case

    run = RunFolder(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        with MethodProcess.start(MethodSpec(str(method))) as process:
            process.open(suite)
            pid = process.pid
            if first_slow == 0:
                ctrl_c_soon()
            run_answer_stage(process, suite, ["test"], run, 1, None, None, progress)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert len(run.answers()) == first_slow
    method.write_text(method.read_text().replace("time.sleep(600)", "pass"))
    stats, _, _, _ = run_method(method, micro_suite, tmp_path / "run", batch_size=1)
    assert stats.skipped == first_slow and stats.answered == 4 - first_slow


# ---------------------------------------------------------------- a method file that cannot be used


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\n", r"^\S*empty\.py defines no method: expected an object with a `name`"),
        ("import not_a_module_xyz\n", r"^importing method file \S*empty\.py failed: ModuleNotFoundError"),
        (
            "class A:\n    name = 'a'\n    def answer(self, c, e): return []\nclass B(A):\n    name = 'b'\n",
            r"defines several methods \['A', 'B'\]; pick one with",
        ),
        ("import os\nos._exit(3)\n", r"^the method process exited with status 3 while loading the method; sys.exit"),
    ],
    ids=["no-method", "import-error", "several", "exits-on-import"],
)
def test_a_method_file_that_cannot_be_used_is_one_line_method_error(tmp_path, source, message):
    f = tmp_path / "empty.py"
    f.write_text(source)
    with pytest.raises(MethodError, match=message) as caught:
        MethodProcess.start(MethodSpec(str(f)))
    assert "\n" not in str(caught.value)


def test_an_unknown_baseline_is_named_with_the_known_ones():
    with pytest.raises(MethodError, match=r"unknown baseline 'nope'; known baselines .*: base-question, base-question\+trigger"):
        MethodProcess.start(MethodSpec("baseline:nope"))


def test_a_misspelt_baseline_is_answered_with_the_close_name():
    with pytest.raises(MethodError, match="unknown baseline '20-question'; did you mean '20-questions'?"):
        MethodProcess.start(MethodSpec("baseline:20-question"))


def test_a_folder_named_wdqa_in_the_working_directory_does_not_shadow_the_package(tmp_path, monkeypatch):
    """The method's process starts with `python -P -m`, so the working directory is not searched first."""
    shadow = tmp_path / "cwd" / "wdqa"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('the shadowing folder was imported')\n")
    method = tmp_path / "constant.py"
    method.write_text("class Constant:\n    name = 'constant'\n    oracle = False\n\n"
                      "    def answer(self, cases, engine):\n        return ['x'] * len(cases)\n")
    monkeypatch.chdir(tmp_path / "cwd")
    with MethodProcess.start(MethodSpec(str(method))) as started:
        assert started.name == "constant"


def test_dit_binds_to_the_suite_and_has_a_fingerprint_through_the_method_protocol():
    from wdqa.baselines.dit.method import DitMethod
    from wdqa.benchmark.method import FingerprintedMethod, SuiteBoundMethod

    assert isinstance(DitMethod(), SuiteBoundMethod) and isinstance(DitMethod(), FingerprintedMethod)


def test_a_method_without_the_optional_hooks_is_neither_bound_nor_fingerprinted():
    from wdqa.baselines.controls import empty_answer
    from wdqa.benchmark.method import FingerprintedMethod, SuiteBoundMethod

    assert not isinstance(empty_answer(), SuiteBoundMethod | FingerprintedMethod)
