"""Run record files survive writers killed mid-record, and concurrent writers, without losing a case.

A torn last line is cut off (with a warning naming the file and case) and that case is answered
again; any other bad line is an error naming the file and line.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import pytest
from wdqa.benchmark.records import AnswerRecord, RunError, RunFolder, ScoreRecord, TornRecordWarning
from wdqa.benchmark.runner import run_answer_stage
from wdqa.benchmark.worker import MethodProcess, MethodSpec
from wdqa.core.suite import Suite

ECHO = """
class Echo:
    name = "echo"
    oracle = False

    def answer(self, cases, engine):
        return [f"answer for {c.diff.diff_id}" for c in cases]
"""


@pytest.fixture()
def setup(micro_suite, tmp_path):
    """The micro suite's test split, a run folder, and a method file that answers without a model."""
    method = tmp_path / "echo.py"
    method.write_text(ECHO)
    suite = Suite.load(micro_suite)
    return suite, method, RunFolder(tmp_path / "run")


def answer(suite: Suite, method: Path, run: RunFolder, limit: int | None = None):
    """The answer stage as `wdqa evaluate` runs it: the method in its own process."""
    with MethodProcess.start(MethodSpec(str(method))) as started:
        started.open(suite)
        return run_answer_stage(started, suite, ["test"], run, limit=limit)


def tear(path: Path, record: dict, keep: float = 0.5) -> None:
    """What a writer killed mid-record leaves: the first part of a line, no newline."""
    line = json.dumps(record).encode()
    with open(path, "ab") as fh:
        fh.write(line[: int(len(line) * keep)])


def lines(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.splitlines()]


def test_a_half_written_record_is_cut_off_and_its_case_answered_again(setup):
    suite, method, run = setup
    ids = [f"test/{d}" for d in suite.case_ids("test")]
    answer(suite, method, run, limit=3)
    torn = ids[3]
    tear(run.answers_path, asdict(AnswerRecord(torn, "test", torn.split("/")[1], "answer")))
    with pytest.warns(TornRecordWarning) as caught:
        stats = answer(suite, method, run)
    messages = [str(w.message) for w in caught]
    assert any("answers.jsonl" in m and f"case {torn}" in m and "cut off" in m for m in messages)
    assert stats.skipped == 3 and stats.answered == len(ids) - 3
    # nothing lost, nothing twice: the torn case was answered again, after the three kept ones
    assert [r["case_id"] for r in lines(run.answers_path)] == ids


def test_a_torn_line_is_left_out_with_a_warning_when_a_smaller_limit_writes_nothing(setup):
    suite, method, run = setup
    ids = [f"test/{d}" for d in suite.case_ids("test")]
    answer(suite, method, run, limit=3)
    torn = ids[3]
    tear(run.answers_path, asdict(AnswerRecord(torn, "test", torn.split("/")[1], "answer")), keep=0.9)
    with pytest.warns(TornRecordWarning, match=f"leaving out its incomplete last line .case {torn}"):
        stats = answer(suite, method, run, limit=2)
    assert stats.skipped == 2
    with pytest.warns(TornRecordWarning):
        assert sorted(run.answers()) == sorted(ids[:3])


def test_a_torn_line_without_a_case_id_is_still_cut_off(tmp_path):
    run = RunFolder(tmp_path)
    run.append_answers([AnswerRecord("test/a", "test", "a", "x")])
    with open(run.answers_path, "ab") as fh:
        fh.write(b'{"cas')
    with pytest.warns(TornRecordWarning, match="its case id was not written"):
        run.append_answers([AnswerRecord("test/b", "test", "b", "y")])
    assert [r["case_id"] for r in lines(run.answers_path)] == ["test/a", "test/b"]


def test_a_bad_line_before_the_last_is_an_error_naming_the_file_and_line(tmp_path):
    run = RunFolder(tmp_path)
    run.append_answers([AnswerRecord(f"test/{i}", "test", str(i), "x") for i in range(3)])
    text = run.answers_path.read_text().splitlines()
    text[1] = text[1][:20]
    run.answers_path.write_text("\n".join(text) + "\n")
    with pytest.raises(RunError, match=r"answers.jsonl line 2 is not valid JSON"):
        run.answers()


def test_a_record_with_unknown_fields_is_an_error_naming_the_file_and_line(tmp_path):
    run = RunFolder(tmp_path)
    run.answers_path.write_text('{"case_id": "test/a", "split": "test", "diff_id": "a", "answer": "x"}\n{"case_id": "test/b"}\n')
    with pytest.raises(RunError, match=r"answers.jsonl line 2 is not a AnswerRecord"):
        run.answers()


def test_score_files_are_repaired_the_same_way(tmp_path):
    run = RunFolder(tmp_path)

    def score(case_id: str, value: int) -> ScoreRecord:
        return ScoreRecord(case_id, "test", case_id[5:], "label", "answer", value, "j", "v1")

    run.append_scores("j@v1", [score("test/a", 3)])
    tear(run.scores_path("j@v1"), asdict(score("test/b", 4)))
    with pytest.warns(TornRecordWarning, match=r"scores/j@v1.jsonl: leaving out .*case test/b"):
        assert list(run.scores("j@v1")) == ["test/a"]
    with pytest.warns(TornRecordWarning, match="cut off"):
        run.append_scores("j@v1", [score("test/b", 5)])
    assert {k: r.score for k, r in run.scores("j@v1").items()} == {"test/a": 3, "test/b": 5}


# ---------------------------------------------------------------- other processes

# A writer that resumes like `wdqa evaluate`: appends one record per case not yet done. Its writes go
# to disk 8 KB per system call, as a slow or network disk takes them, so that a kill at a random
# moment usually lands inside a record rather than between two.
WRITER = """
import os, sys, time
from wdqa.benchmark.records import AnswerRecord, RunFolder

real_write = os.write
def slow_write(fd, data):
    time.sleep(0.0005)
    return real_write(fd, bytes(data[:8192]))
os.write = slow_write

run, n, size = RunFolder(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
done = run.answers()
print("writing", flush=True)
for i in range(n):
    case_id = f"test/c{i:03d}"
    if case_id not in done:
        run.append_answers([AnswerRecord(case_id, "test", f"c{i:03d}", f"{i:03d}" * size)])
print("finished", flush=True)
"""


def start_writer(run_dir: Path, *args: int) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(run_dir), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "ready\n"  # imports done
    return child


def test_writers_killed_at_random_points_lose_nothing_and_redo_only_the_torn_case(tmp_path):
    n, size = 60, 30_000  # 90 KB per record: a dozen system calls each
    answers = tmp_path / "answers.jsonl"
    rng = random.Random(0)
    torn: set[str] = set()  # cases whose record a kill cut short
    stderr = ""
    kills = 0
    while kills < 6 or (len(torn) < 2 and kills < 30):  # most kills land inside a record; go on until two did
        kills += 1
        child = start_writer(tmp_path, n, size)
        # The kill lands while records are being written (a record takes a dozen slow system calls),
        # not while the writer starts or reads the run back, however loaded the machine is.
        assert child.stdout is not None and child.stdout.readline() == "writing\n"
        time.sleep(rng.uniform(0.0, 0.05))
        child.send_signal(signal.SIGKILL)
        stderr += child.communicate()[1]
        data = answers.read_bytes() if answers.exists() else b""
        if data and not data.endswith(b"\n"):
            torn.add(re.search(r'"case_id": "([^"]+)"', data[data.rfind(b"\n") + 1 :].decode(errors="replace")).group(1))
    child = start_writer(tmp_path, n, size)
    stderr += child.communicate(timeout=300)[1]
    assert child.returncode == 0, stderr
    assert torn, "no kill landed inside a record"
    # every torn record was cut off by the next writer, with a warning naming it, and done again
    assert set(re.findall(r"cut off its incomplete last line \(case ([^,]+),", stderr)) == torn
    records = lines(answers)
    assert [r["case_id"] for r in records] == [f"test/c{i:03d}" for i in range(n)]  # each case once, in order
    assert all(r["answer"] == f"{i:03d}" * size for i, r in enumerate(records))


# Two writers on one run, their writes cut into 8 KB system calls as above: without the lock their
# batches would interleave mid-line.
CONCURRENT = """
import os, sys, time
from pathlib import Path
from wdqa.benchmark.records import AnswerRecord, RunFolder

real_write = os.write
def slow_write(fd, data):
    time.sleep(0.0005)
    return real_write(fd, bytes(data[:8192]))
os.write = slow_write

run, who, start = RunFolder(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
while not start.exists():
    time.sleep(0.01)
for batch in range(40):
    run.append_answers([AnswerRecord(f"test/{who}-{batch}-{k}", "test", who, who * 3_000) for k in range(20)])
"""


def test_two_processes_appending_to_one_run_never_interleave_lines(tmp_path):
    start = tmp_path / "go"
    writers = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT, str(tmp_path / "run"), who, str(start)], stderr=subprocess.PIPE)
        for who in ("a", "b")
    ]
    time.sleep(0.5)
    start.touch()
    for w in writers:
        assert w.wait(timeout=300) == 0, w.stderr.read() if w.stderr else ""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no torn line either
        answers = RunFolder(tmp_path / "run").answers()
    assert len(answers) == 2 * 40 * 20
    assert all(r.answer == r.diff_id * 3_000 for r in answers.values())


def test_a_reader_never_sees_half_a_batch(tmp_path):
    run = RunFolder(tmp_path)
    writer = subprocess.Popen([sys.executable, "-c", CONCURRENT, str(tmp_path), "a", str(tmp_path / "go")])
    (tmp_path / "go").touch()
    seen = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            while writer.poll() is None:
                seen.append(len(run.answers()))
    finally:
        writer.wait(timeout=300)
    assert all(count % 20 == 0 for count in seen) and len(run.answers()) == 40 * 20
    assert os.path.getsize(run.answers_path) > 0
