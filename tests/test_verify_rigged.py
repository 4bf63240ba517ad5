"""`wdqa verify` accepts exactly the honest bundles: those of real runs on the micro suite that were
resumed, evaluated twice, duplicated by a concurrent evaluate, or re-judged; and refuses a corpus of
rigged bundles made from an honest one, each for its own named reason."""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from wdqa.benchmark.judge.base import JudgeRequest
from wdqa.benchmark.judge.registry import JUDGES
from wdqa.benchmark.records import RunFolder, ScoreRecord, judge_key, split_summaries
from wdqa.cli import app
from wdqa.core.types import Score
from wdqa.leaderboard.bundle import ArchiveLimits, BundleError, pack, verify
from wdqa.leaderboard.bundle_archive import read_archive, write_archive

# The honest method: fixed answers, some right and some not, and a failure on the cases named in
# VERIFY_FAIL (what a crash on one case looks like; the case is answered again on resume).
METHOD = """
import os

ANSWERS = {
    "ht-test-0000": "thunderstorms and lightning", "ht-test-0001": "cooking", "ht-test-0002": "street protests",
    "ht-test-0003": "jazz music", "ht-val-0000": "police work", "ht-val-0001": "volcanoes",
    "ht-train-0000": "textbooks", "ht-train-0001": "the ocean", "ht-train-0002": "geysers and hot springs",
    "ht-train-0003": "knitting", "ht-train-0004": "yoga", "ht-train-0005": "tax law",
}


class Honest:
    name = "verify-honest"
    oracle = False

    def answer(self, cases, engine):
        failing = set(filter(None, os.environ.get("VERIFY_FAIL", "").split(",")))
        for case in cases:
            if case.case_id.split("/")[1] in failing:
                raise RuntimeError(f"transient failure on {case.case_id}")
        return [ANSWERS[case.case_id.split("/")[1]] for case in cases]
"""
SPLITS = ("test", "val", "train")
LENGTH_JUDGE = "verify-length"


class _LengthJudge:
    """A second, deterministic judge for the re-judged run: grades by answer length."""

    name = "length-judge"
    prompt_version = "len-v1"

    def score(self, requests: list[JudgeRequest]) -> list[Score]:
        return [
            Score(r.case_id, 1 + len(r.answer) % 5, self.name, self.prompt_version, raw="")
            for r in requests
        ]


@pytest.fixture(scope="module")
def length_judge() -> Iterator[str]:
    JUDGES.register(LENGTH_JUDGE, "test judge: answer length")(lambda arg, **options: _LengthJudge())
    yield LENGTH_JUDGE
    JUDGES.remove(LENGTH_JUDGE)


def _cli(*args: str, fail: str = "") -> None:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "VERIFY_FAIL": fail})
    assert result.exit_code == 0, result.output


def _evaluate(method: Path, suite: Path, run: Path, *extra: str, fail: str = "") -> None:
    splits = [a for s in SPLITS for a in ("--split", s)]
    _cli(
        "evaluate",
        str(method),
        "--suite",
        str(suite),
        *splits,
        "--baselines",
        "none",
        "--run-dir",
        str(run),
        *extra,
        fail=fail,
    )


@dataclass(frozen=True)
class HonestRuns:
    resumed: Path  # a case failed, then succeeded on resume
    twice: Path  # evaluated with --limit 2, then in full; one case failed both times
    concurrent: Path  # two evaluates that both answered every case, their records interleaved
    rejudged: Path  # graded by the offline judge and again by a second judge


@pytest.fixture(scope="module")
def runs(
    micro_suite: Path, length_judge: str, tmp_path_factory: pytest.TempPathFactory
) -> HonestRuns:
    root = tmp_path_factory.mktemp("honest")
    method = root / "honest_method.py"
    method.write_text(METHOD)
    resumed = root / "resumed"
    _evaluate(method, micro_suite, resumed, fail="ht-test-0001")
    _evaluate(method, micro_suite, resumed)
    twice = root / "twice"
    _evaluate(method, micro_suite, twice, "--limit", "2", fail="ht-test-0000")
    _evaluate(method, micro_suite, twice, fail="ht-test-0000")
    concurrent = root / "concurrent"
    shutil.copytree(resumed, concurrent)
    for path in [concurrent / "answers.jsonl", *(concurrent / "scores").glob("*.jsonl")]:
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(line for pair in zip(lines, lines, strict=True) for line in pair))
    rejudged = root / "rejudged"
    shutil.copytree(resumed, rejudged)
    _cli("judge", str(rejudged), "--judge", length_judge)
    return HonestRuns(resumed, twice, concurrent, rejudged)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------- honest bundles are accepted


def test_the_honest_runs_hold_the_duplicate_records_the_flows_leave(runs: HonestRuns) -> None:
    def repeated(path: Path) -> int:
        ids = [r["case_id"] for r in _lines(path)]
        return len(ids) - len(set(ids))

    key = RunFolder(runs.resumed).judge_keys()[0]
    assert (
        repeated(runs.resumed / "answers.jsonl") == 1
        and repeated(runs.resumed / "scores" / f"{key}.jsonl") == 1
    )
    assert repeated(runs.twice / "answers.jsonl") == 1  # the case that failed twice
    assert (
        repeated(runs.concurrent / "answers.jsonl") == 14
    )  # 13 lines, each written twice, 12 cases
    assert RunFolder(runs.rejudged).judge_keys() == sorted(
        [key, judge_key("length-judge", "len-v1")]
    )


@pytest.mark.parametrize("flow", ["resumed", "twice", "concurrent", "rejudged"])
@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_an_honest_bundle_is_accepted(
    runs: HonestRuns, tmp_path: Path, flow: str, suffix: str
) -> None:
    bundle = pack(getattr(runs, flow), tmp_path / f"{flow}{suffix}")
    result = verify(bundle, judge_spec=LENGTH_JUDGE if flow == "rejudged" else None)
    assert result.accepted, result.problems
    assert not result.unverified, result.unverified
    assert sum(" sampled case(s) (seed " in c for c in result.checks) == (
        2 if flow == "rejudged" else 1
    )


def test_submit_packs_one_record_per_case_and_the_runs_summary(
    runs: HonestRuns, tmp_path: Path
) -> None:
    run = RunFolder(runs.concurrent)
    files = read_archive(pack(run.path, tmp_path / "b.tar.gz")).files
    key = run.judge_keys()[0]
    answers = [json.loads(line) for line in files["answers.jsonl"].decode().splitlines()]
    scores = [json.loads(line) for line in files[f"scores/{key}.jsonl"].decode().splitlines()]
    assert len(answers) == len(scores) == 12 == len({r["case_id"] for r in scores})
    resumed_case = next(r for r in answers if r["case_id"] == "test/ht-test-0001")
    assert (
        resumed_case["error"] is None and resumed_case["answer"] == "cooking"
    )  # the last record, not the failure
    stated = json.loads(files["summary.json"])
    assert stated[key]["test"]["mean"] == pytest.approx(run.summary()[key]["test"].mean)


def test_submit_refuses_a_judge_file_that_does_not_grade_the_current_answers(
    runs: HonestRuns, tmp_path: Path
) -> None:
    run = RunFolder(tmp_path / "run")
    shutil.copytree(runs.resumed, run.path)
    old = _lines(run.answers_path)[0]  # an answer given after the last judging, never graded
    run.answers_path.write_text(
        run.answers_path.read_text() + json.dumps({**old, "answer": "a new answer"}) + "\n"
    )
    key = run.judge_keys()[0]
    with pytest.raises(
        BundleError, match=f"scores/{re.escape(key)}.jsonl does not grade the run's current answers"
    ):
        pack(run.path, tmp_path / "b.tar.gz")


def test_a_verify_without_re_judging_says_what_it_did_not_check(
    runs: HonestRuns, tmp_path: Path
) -> None:
    result = verify(pack(runs.resumed, tmp_path / "b.tar.gz"), rejudge_sample=0)
    assert result.accepted and result.unverified == ["no case was re-judged (--rejudge-sample 0)"]


def test_a_judge_that_is_not_available_offline_is_named_unverified(
    runs: HonestRuns, tmp_path: Path
) -> None:
    result = verify(pack(runs.rejudged, tmp_path / "b.tar.gz"))  # no --judge for the length judge
    key = judge_key("length-judge", "len-v1")
    assert (
        result.accepted
        and len(result.unverified) == 1
        and f"scores/{key}.jsonl was not re-judged" in result.unverified[0]
    )


# ---------------------------------------------------------------- the rigged corpus


@pytest.fixture(scope="module")
def honest(runs: HonestRuns, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return read_archive(
        pack(runs.resumed, tmp_path_factory.mktemp("honest-bundle") / "b.tar.gz")
    ).files


@dataclass
class Parts:
    """An honest bundle's members, parsed for editing as a tamperer would."""

    manifest: dict[str, Any]
    answers: list[dict[str, Any]]
    scores: dict[str, list[dict[str, Any]]]
    summary: dict[str, Any]
    raw: dict[str, bytes]  # members to write as they are (added files, broken text)

    @property
    def key(self) -> str:
        return next(iter(self.scores))

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.scores[self.key]

    def case(self, case_id: str, records: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return next(
            r for r in (records if records is not None else self.records) if r["case_id"] == case_id
        )


def _parse(files: dict[str, bytes]) -> Parts:
    def lines(data: bytes) -> list[dict[str, Any]]:
        return [json.loads(line) for line in data.decode().splitlines()]

    scores = {
        n[len("scores/") : -len(".jsonl")]: lines(d)
        for n, d in files.items()
        if n.startswith("scores/")
    }
    return Parts(
        json.loads(files["manifest.json"]),
        lines(files["answers.jsonl"]),
        scores,
        json.loads(files["summary.json"]),
        {},
    )


def _serialise(parts: Parts, resummarise: bool) -> dict[str, bytes]:
    files = {
        "manifest.json": json.dumps(parts.manifest).encode(),
        "answers.jsonl": "".join(json.dumps(r) + "\n" for r in parts.answers).encode(),
    }
    for key, records in parts.scores.items():
        files[f"scores/{key}.jsonl"] = "".join(json.dumps(r) + "\n" for r in records).encode()
    if resummarise:  # what a tamperer with wdqa at hand does to make the numbers agree
        summary = {}
        for key, records in parts.scores.items():
            last = {r["case_id"]: ScoreRecord(**r) for r in records}
            summary[key] = {s: vars(x) for s, x in split_summaries(last.values()).items()}
        parts.summary = summary
    files["summary.json"] = json.dumps(parts.summary).encode()
    files.update(parts.raw)
    return files


def _rehash(files: dict[str, bytes]) -> dict[str, bytes]:
    import hashlib

    index = json.loads(files.get("bundle.json", b'{"format": "wdqa-bundle", "format_version": 1}'))
    index["files"] = {
        n: hashlib.sha256(d).hexdigest() for n, d in files.items() if n != "bundle.json"
    }
    return {**files, "bundle.json": json.dumps(index).encode()}


def _tar_with(files: dict[str, bytes], extra: Callable[[tarfile.TarFile], None], out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        extra(tf)
    return out


Edit = Callable[[Parts], None]


def _set_score(value: Any) -> Edit:
    def edit(p: Parts) -> None:
        p.case("test/ht-test-0001")["score"] = value

    return edit


def _drop_cases(p: Parts) -> None:
    gone = {"test/ht-test-0002", "test/ht-test-0003"}
    p.answers = [r for r in p.answers if r["case_id"] not in gone]
    p.scores[p.key] = [r for r in p.records if r["case_id"] not in gone]


def _foreign_split(p: Parts) -> None:
    for r in [*p.answers, *p.records]:
        if r["split"] == "val":
            r["split"], r["case_id"] = "secret", "secret/" + r["diff_id"]
    for r in p.records:
        if r["split"] == "secret":
            r["label"], r["score"] = (
                r["answer"],
                5,
            )  # graded against its own labels, as the rigger wants


def _all_five(p: Parts) -> None:
    for r in p.records:
        r["score"] = 5


def _label_is_the_answer(p: Parts) -> None:
    record = p.case("test/ht-test-0001")
    record["label"], record["score"] = record["answer"], 5


def _case_not_in_suite(p: Parts) -> None:
    answer = {
        **p.case("test/ht-test-0000", p.answers),
        "case_id": "test/ht-test-0099",
        "diff_id": "ht-test-0099",
    }
    p.answers.append(answer)
    p.records.append(
        {
            **p.case("test/ht-test-0000"),
            "case_id": "test/ht-test-0099",
            "diff_id": "ht-test-0099",
            "score": 5,
        }
    )


def _answer_edited(p: Parts) -> None:
    p.case("test/ht-test-0001", p.answers)["answer"] = "babies and toddlers"


def _duplicate_with_five(p: Parts) -> None:
    p.records.append({**p.case("test/ht-test-0001"), "score": 5})


def _duplicate_answer(p: Parts) -> None:
    p.answers.append(dict(p.case("test/ht-test-0001", p.answers)))


def _summary_mean(p: Parts) -> None:
    p.summary[p.key]["test"]["mean"] = 4.9


def _summary_without_a_split(p: Parts) -> None:
    del p.summary[p.key]["val"]


def _suite_hash(p: Parts) -> None:
    p.manifest["suite"]["content_sha256"] = "0" * 64


def _unknown_judge_key(p: Parts) -> None:
    p.scores["my-judge@v1"] = p.scores.pop(p.key)
    for r in p.scores["my-judge@v1"]:
        r["judge"], r["prompt_version"] = "my-judge", "v1"


def _judge_version(p: Parts) -> None:
    p.case("test/ht-test-0001")["prompt_version"] = "gbt-older"


def _malformed_line(p: Parts) -> None:
    text = "".join(json.dumps(r) + "\n" for r in p.records).splitlines()
    text[2] = '{"case_id": "test/ht-test-0002", "score": 5'
    p.raw[f"scores/{p.key}.jsonl"] = ("\n".join(text) + "\n").encode()


def _missing_key(p: Parts) -> None:
    del p.case("test/ht-test-0001")["score"]


def _case_id_number(p: Parts) -> None:
    p.case("test/ht-test-0001", p.answers)["case_id"] = 7


def _unknown_field(p: Parts) -> None:
    p.case("test/ht-test-0001")["bonus"] = 5


def _failure_hidden_as_unusable(p: Parts) -> None:
    answer = p.case("test/ht-test-0001", p.answers)
    answer["answer"], answer["error"] = None, "RuntimeError: boom"
    record = p.case("test/ht-test-0001")
    record["answer"], record["score"], record["failed"] = None, None, False


def _failed_with_a_score(p: Parts) -> None:
    answer = p.case("test/ht-test-0001", p.answers)
    answer["answer"], answer["error"] = None, "RuntimeError: boom"
    record = p.case("test/ht-test-0001")
    record["answer"], record["score"], record["failed"] = None, 5, True


def _low_scores_unusable(p: Parts) -> None:
    low = [r for r in p.records if r["score"] is not None and r["score"] <= 2]
    assert low, "the honest bundle needs low scores for this rigging"
    low[0]["score"] = None


def _case_id_of_another_diff(p: Parts) -> None:
    for r in (p.case("test/ht-test-0001", p.answers), p.case("test/ht-test-0001")):
        r["diff_id"] = "ht-test-0002"


def _split_dropped(p: Parts) -> None:
    p.answers = [r for r in p.answers if r["split"] != "val"]
    p.scores[p.key] = [r for r in p.records if r["split"] != "val"]


def _extra_member(p: Parts) -> None:
    p.raw["notes.txt"] = b"nothing to see"


def _manifest_broken(p: Parts) -> None:
    p.raw["manifest.json"] = b'{"method": '


@dataclass(frozen=True)
class Rig:
    name: str
    edit: Edit
    expect: str
    rehash: bool = True
    resummarise: bool = True


RIGS = [
    Rig("dropped cases", _drop_cases, "split test: 2 of its 4 cases are not in the bundle"),
    Rig("foreign split", _foreign_split, "split secret does not exist in suite tiny-micro"),
    Rig("score 100", _set_score(100), "case test/ht-test-0001 has score 100, not an integer 1-5"),
    Rig("score 0", _set_score(0), "case test/ht-test-0001 has score 0, not an integer 1-5"),
    Rig(
        "float score",
        _set_score(4.5),
        "field 'score' is 4.5, expected int or null",
        resummarise=False,
    ),
    Rig(
        "string score",
        _set_score("5"),
        "field 'score' is \"5\", expected int or null",
        resummarise=False,
    ),
    Rig("boolean score", _set_score(True), "field 'score' is true, expected int or null"),
    Rig(
        "duplicated score record",
        _duplicate_with_five,
        "holds more than one record for 1 case(s) (first: test/ht-test-0001, 2 records)",
    ),
    Rig(
        "duplicated answer record",
        _duplicate_answer,
        "answers.jsonl holds more than one record for 1 case(s)",
    ),
    Rig("all scores 5, re-hashed", _all_five, "sampled cases of offline-gbt@"),
    Rig(
        "edited label",
        _label_is_the_answer,
        "1 label(s) differ from the suite's (first: test/ht-test-0001)",
    ),
    Rig(
        "case not in suite",
        _case_not_in_suite,
        "split test: 1 case(s) are not in the suite (first: test/ht-test-0099)",
    ),
    Rig(
        "answer edited after scoring",
        _answer_edited,
        "1 scored answer(s) differ from answers.jsonl (first: test/ht-test-0001)",
    ),
    Rig(
        "summary edited",
        _summary_mean,
        "/ test mean = 4.9 but the per-case scores give",
        resummarise=False,
    ),
    Rig(
        "summary missing a split",
        _summary_without_a_split,
        "/ val although the bundle scores it",
        resummarise=False,
    ),
    Rig("bundle.json hash mismatch", _set_score(5), ".jsonl has sha256", rehash=False),
    Rig(
        "wrong suite content hash",
        _suite_hash,
        "suite content hash differs: the manifest says 0000000000000000",
    ),
    Rig(
        "unknown judge key",
        _unknown_judge_key,
        "scores/my-judge@v1.jsonl is not among the manifest's judges",
    ),
    Rig(
        "another judge version",
        _judge_version,
        "graded by another judge version than the manifest states",
    ),
    Rig("malformed JSON line", _malformed_line, ".jsonl line 3 is not valid JSON: Expecting"),
    Rig("missing key", _missing_key, "lacks field 'score'", resummarise=False),
    Rig(
        "case id of the wrong type",
        _case_id_number,
        "answers.jsonl line 2 field 'case_id' is 7, expected str",
    ),
    Rig("unknown field", _unknown_field, "has unknown field(s) 'bonus'", resummarise=False),
    Rig(
        "failure hidden as an unusable verdict",
        _failure_hidden_as_unusable,
        "1 score(s) say failed where answers.jsonl says otherwise",
    ),
    Rig(
        "failed case with a score",
        _failed_with_a_score,
        "case test/ht-test-0001 is marked failed but has score 5",
    ),
    Rig(
        "low score made unusable",
        _low_scores_unusable,
        "re-judging 1 unusable-verdict cases of offline-gbt@",
    ),
    Rig(
        "case id of another diff",
        _case_id_of_another_diff,
        "1 case id(s) are not <split>/<diff_id> (first: test/ht-test-0001)",
    ),
    Rig(
        "split dropped, manifest kept",
        _split_dropped,
        "the manifest says split val was run but the bundle holds none of its cases",
    ),
    Rig("extra member", _extra_member, "notes.txt is not part of a bundle"),
    Rig(
        "malformed manifest",
        _manifest_broken,
        "manifest.json is not valid JSON: Expecting value: line 1 column 12",
    ),
]


@pytest.mark.parametrize("rig", RIGS, ids=[r.name for r in RIGS])
def test_a_rigged_bundle_is_refused_for_its_reason(
    honest: dict[str, bytes], tmp_path: Path, rig: Rig
) -> None:
    parts = _parse(honest)
    rig.edit(parts)
    files = _serialise(parts, rig.resummarise)
    files = _rehash(files) if rig.rehash else {**files, "bundle.json": honest["bundle.json"]}
    out = tmp_path / "rigged.tar.gz"
    write_archive(out, files)
    result = verify(out)
    assert not result.accepted, f"rigged bundle accepted: {rig.name}"
    assert any(rig.expect in p for p in result.problems), result.problems


def _link(tf: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("scores/link.jsonl")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    tf.addfile(info)


def _member(name: str, data: bytes = b"{}") -> Callable[[tarfile.TarFile], None]:
    def add(tf: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))

    return add


ARCHIVE_RIGS = [
    (
        "path traversal member",
        _member("../evil.json"),
        {},
        "member '../evil.json' has a path that escapes the bundle",
    ),
    (
        "absolute member",
        _member("/tmp/evil.json"),
        {},
        "member '/tmp/evil.json' has a path that escapes the bundle",
    ),
    ("symlink member", _link, {}, "member 'scores/link.jsonl' is a link or device"),
    (
        "member twice",
        _member("summary.json", b"{}"),
        {},
        "member summary.json appears twice in the archive",
    ),
    (
        "oversized member",
        _member("big.json", b" " * 200_000),
        {"member_bytes": 100_000},
        "member big.json is 200000 bytes, over the limit of 100000 bytes",
    ),
    (
        "too many members",
        _member("x.json"),
        {"members": 5},
        "the archive holds more than 5 members",
    ),
    (
        "members over the total",
        _member("y.json", b" " * 20_000),
        {"total_bytes": 50_000},
        "the members add up to more than 50000 bytes",
    ),
]


@pytest.mark.parametrize(
    "extra, limits, expect", [r[1:] for r in ARCHIVE_RIGS], ids=[r[0] for r in ARCHIVE_RIGS]
)
def test_a_rigged_archive_is_refused_for_its_reason(
    honest: dict[str, bytes],
    tmp_path: Path,
    extra: Callable[[tarfile.TarFile], None],
    limits: dict[str, int],
    expect: str,
) -> None:
    bundle = _tar_with(honest, extra, tmp_path / "rigged.tar.gz")
    result = verify(bundle, limits=ArchiveLimits(**limits))
    assert not result.accepted
    assert any(expect in p for p in result.problems), result.problems


def test_a_bundle_without_a_manifest_or_index_is_refused(
    honest: dict[str, bytes], tmp_path: Path
) -> None:
    no_manifest = {
        n: d for n, d in _rehash({n: d for n, d in honest.items() if n != "manifest.json"}).items()
    }
    write_archive(tmp_path / "a.tar.gz", no_manifest)
    assert "manifest.json is missing from the bundle" in verify(tmp_path / "a.tar.gz").problems
    write_archive(tmp_path / "b.tar.gz", {n: d for n, d in honest.items() if n != "bundle.json"})
    assert (
        verify(tmp_path / "b.tar.gz")
        .problems[0]
        .startswith("bundle.json is missing: this is not a wdqa bundle")
    )


def test_the_corpus_holds_at_least_twenty_riggings() -> None:
    assert len(RIGS) + len(ARCHIVE_RIGS) + 2 >= 20


# ---------------------------------------------------------------- the command line


def test_verify_prints_accepted_or_refused_with_every_problem(
    runs: HonestRuns, honest: dict[str, bytes], tmp_path: Path
) -> None:
    bundle = pack(runs.resumed, tmp_path / "honest.tar.gz")
    accepted = CliRunner().invoke(app, ["verify", str(bundle)])
    assert accepted.exit_code == 0 and f"ACCEPTED {bundle}" in accepted.output
    parts = _parse(honest)
    _all_five(parts)
    _suite_hash(parts)
    write_archive(tmp_path / "rigged.tar.gz", _rehash(_serialise(parts, resummarise=True)))
    refused = CliRunner().invoke(app, ["verify", str(tmp_path / "rigged.tar.gz")])
    assert (
        refused.exit_code == 1 and "REFUSED" in refused.output and "2 problem(s)" in refused.output
    )
    assert (
        "suite content hash differs" in refused.output
        and "sampled cases of offline-gbt@" in refused.output
    )


def test_a_bundle_whose_suite_cannot_be_found_is_one_line_naming_the_fix(
    honest: dict[str, bytes], tmp_path: Path
) -> None:
    parts = _parse(honest)
    parts.manifest["suite"].update(
        source=str(tmp_path / "gone"), root=str(tmp_path / "gone"), name="no-such-suite"
    )
    write_archive(tmp_path / "b.tar.gz", _rehash(_serialise(parts, resummarise=False)))
    result = CliRunner().invoke(app, ["verify", str(tmp_path / "b.tar.gz")])
    assert result.exit_code == 2
    assert (
        result.output.count("\n") == 1
        and "cannot find the suite" in result.output
        and "pass --suite DIR" in result.output
    )


def test_verify_with_an_explicit_suite_folder_checks_against_it(
    runs: HonestRuns, micro_suite: Path, tmp_path: Path
) -> None:
    result = verify(pack(runs.resumed, tmp_path / "b.zip"), suite=micro_suite)
    assert result.accepted, result.problems
    assert any(f"suite tiny-micro at {micro_suite}" in c for c in result.checks)
