"""Method processes forked by a zygote (benchmark/worker/zygote.py) are set up as fresh ones are,
die with the zygote and the runner, and start fresh once the zygote is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from processes import running
from wdqa.benchmark.worker import MethodProcess, MethodSpec
from wdqa.benchmark.worker.zygote import Zygote
from wdqa.core.suite import Suite

PROBE = """
import json, os, random, sys

class Probe:
    name = "probe"
    oracle = False

    def answer(self, cases, engine):
        print("probe on stdout", flush=True)
        print("probe on stderr", file=sys.stderr, flush=True)
        report = dict(pid=os.getpid(), ppid=os.getppid(), sid=os.getsid(0), pgid=os.getpgid(0), cwd=os.getcwd(),
                      stdin=os.readlink("/proc/self/fd/0"), random=random.random(), env=os.environ.get("WDQA_PROBE"),
                      kmp=os.environ.get("KMP_INIT_AT_FORK"))
        return [json.dumps(report)] * len(cases)
"""


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    path = tmp_path / "probe.py"
    path.write_text(PROBE)
    return path


def ask(process: MethodProcess, suite: Suite) -> dict:
    """One case answered by the probe: what its process saw."""
    case = suite.case_ids("test")[0]
    result = process.answer("test", [case], None, 60.0)
    assert result.error is None, result.error
    return json.loads(result.answers[0])


def test_a_forked_method_process_is_set_up_as_a_fresh_one(micro_suite, probe, tmp_path, monkeypatch, capfd):
    suite = Suite.load(micro_suite)
    monkeypatch.chdir(tmp_path)
    with Zygote.start() as zygote:
        seen = []
        for _ in range(2):
            with MethodProcess.start(MethodSpec(str(probe)), zygote=zygote) as process:
                process.open(suite)
                seen.append(ask(process, suite))
        assert zygote.forked == 2
        for report in seen:
            assert report["ppid"] == zygote.popen.pid  # forked, not started by the runner
            assert report["sid"] == report["pgid"] == report["pid"]  # its own session: Ctrl-C reaches the runner only
            assert report["cwd"] == str(tmp_path) and report["stdin"] == "/dev/null"
        assert seen[0]["random"] != seen[1]["random"]  # seeded afresh, as a new interpreter is
    out, err = capfd.readouterr()
    assert out.count("probe on stdout") == 2 and err.count("probe on stderr") == 2


def test_a_forked_method_process_has_the_runners_environment_at_the_fork(micro_suite, probe, monkeypatch):
    """Libraries the runner imports after the zygote started set variables (scikit-learn's
    KMP_INIT_AT_FORK): a forked process sees them as a fresh one started then would."""
    suite = Suite.load(micro_suite)
    monkeypatch.delenv("KMP_INIT_AT_FORK", raising=False)
    with Zygote.start() as zygote:
        monkeypatch.setenv("WDQA_PROBE", "set after the zygote started")
        monkeypatch.setenv("KMP_INIT_AT_FORK", "FALSE")
        with MethodProcess.start(MethodSpec(str(probe)), zygote=zygote) as process:
            process.open(suite)
            report = ask(process, suite)
    assert report["ppid"] == zygote.popen.pid
    assert (report["env"], report["kmp"]) == ("set after the zygote started", "FALSE")


def test_when_the_zygote_dies_its_method_processes_die_and_the_next_call_starts_fresh(micro_suite, probe):
    suite = Suite.load(micro_suite)
    with Zygote.start() as zygote, MethodProcess.start(MethodSpec(str(probe)), zygote=zygote) as process:
        process.open(suite)
        first = ask(process, suite)
        zygote.popen.kill()
        zygote.popen.wait()
        case = suite.case_ids("test")[0]
        lost = process.answer("test", [case], None, 60.0)
        assert lost.answers is None and "killed by signal SIGKILL" in lost.error
        again = ask(process, suite)
    assert first["ppid"] == zygote.popen.pid and again["ppid"] == os.getpid() and process.restarts == 1
    with pytest.raises(ProcessLookupError):
        os.kill(first["pid"], 0)


def test_a_zygote_that_cannot_import_says_so_in_one_line_and_methods_start_fresh(micro_suite, probe, capfd):
    suite = Suite.load(micro_suite)
    with Zygote.start(preload=("wdqa.benchmark.worker.child", "wdqa_no_such_module")) as zygote:
        assert zygote.popen.wait(timeout=60) == 1
        with MethodProcess.start(MethodSpec(str(probe)), zygote=zygote) as process:
            process.open(suite)
            report = ask(process, suite)
    assert report["ppid"] == os.getpid() and zygote.forked == 0
    err = capfd.readouterr().err
    assert "Traceback" not in err
    said = [line for line in err.splitlines() if "zygote" in line]
    assert said == ["wdqa: the method-process zygote could not import wdqa_no_such_module "
                    "(ModuleNotFoundError: No module named 'wdqa_no_such_module'); method processes start fresh instead"]


RUNNER = """
import json, sys, time
from wdqa.benchmark.worker import MethodProcess, MethodSpec
from wdqa.benchmark.worker.zygote import Zygote
from wdqa.core.suite import Suite

suite = Suite.load(sys.argv[2])
zygote = Zygote.start()
process = MethodProcess.start(MethodSpec(sys.argv[1]), zygote=zygote)
process.open(suite)
result = process.answer("test", suite.case_ids("test")[:1], None, 60.0)
print(json.dumps({"zygote": zygote.popen.pid, "method": json.loads(result.answers[0])["pid"]}), flush=True)
time.sleep(600)
"""


def test_a_runner_that_dies_takes_the_zygote_and_its_method_processes_with_it(micro_suite, probe, tmp_path):
    runner = subprocess.Popen([sys.executable, "-c", textwrap.dedent(RUNNER), str(probe), str(micro_suite)],
                              stdout=subprocess.PIPE, text=True)
    try:
        pids = json.loads(next(line for line in runner.stdout if line.startswith("{")))  # after the probe's own line
    finally:
        runner.kill()
        runner.wait()
    deadline = time.monotonic() + 10
    alive = set(pids.values())
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if running(pid)}
        time.sleep(0.05)
    assert not alive, pids


def test_closing_the_zygote_ends_the_method_processes_it_forked(micro_suite, probe):
    suite = Suite.load(micro_suite)
    zygote = Zygote.start()
    process = MethodProcess.start(MethodSpec(str(probe)), zygote=zygote)
    process.open(suite)
    pid = ask(process, suite)["pid"]
    zygote.close()
    assert zygote.popen.returncode == 0 and not running(pid)
    process.kill()  # the runner's handle learns it is gone, without waiting
