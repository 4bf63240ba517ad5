"""`wdqa submit` / `wdqa verify`: honest bundles pass; bundles that do not add up are refused by name."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import typer
from _leaderboard_fixtures import JUDGE, KEY, PROMPT, make_run, make_suite
from typer.testing import CliRunner
from wdqa.benchmark.judge.base import JudgeRequest
from wdqa.benchmark.judge.registry import JUDGES
from wdqa.core.suite import Suite
from wdqa.core.types import Score
from wdqa.leaderboard import commands
from wdqa.leaderboard.bundle import BundleError, pack, verify
from wdqa.leaderboard.bundle_archive import read_archive

SCORES = {"hidden-topic": [5, 4, 1, 3, 5, 2], "null": [5, 1, 5, 5]}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return make_suite(tmp_path_factory.mktemp("suite") / "suite")


@pytest.fixture
def bundle(tmp_path: Path, suite: Suite) -> Path:
    run = make_run(tmp_path / "runs", "dit", SCORES, suite)
    return pack(run, tmp_path / "dit.wdqa-bundle.tar.gz")


def _repack(bundle: Path, edit: Callable[[dict[str, bytes]], None], rehash: bool) -> Path:
    """Tamper with a bundle; with `rehash` the tamperer also fixes bundle.json's hashes."""
    files = read_archive(bundle).files
    edit(files)
    if rehash:
        index = json.loads(files["bundle.json"])
        index["files"] = {
            n: hashlib.sha256(d).hexdigest() for n, d in files.items() if n != "bundle.json"
        }
        files["bundle.json"] = json.dumps(index).encode()
    out = bundle.with_name("tampered.tar.gz")
    with tarfile.open(out, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out


def _edit_jsonl(name: str, case_id: str, **changes: object) -> Callable[[dict[str, bytes]], None]:
    def edit(files: dict[str, bytes]) -> None:
        rows = [json.loads(line) for line in files[name].decode().splitlines()]
        for row in rows:
            if row["case_id"] == case_id:
                row.update(changes)
        files[name] = "".join(json.dumps(r) + "\n" for r in rows).encode()

    return edit


def _edit_json(name: str, change: Callable[[dict], None]) -> Callable[[dict[str, bytes]], None]:
    def edit(files: dict[str, bytes]) -> None:
        data = json.loads(files[name])
        change(data)
        files[name] = json.dumps(data).encode()

    return edit


def _problems(path: Path, suite: Suite | None = None) -> str:
    result = verify(path, suite.root if suite else None)
    assert not result.accepted, "a tampered bundle was accepted"
    return "\n".join(result.problems)


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_an_honest_bundle_is_accepted_with_its_suite(
    tmp_path: Path, suite: Suite, suffix: str
) -> None:
    run = make_run(tmp_path / "runs", "dit", SCORES, suite)
    result = verify(pack(run, tmp_path / f"b{suffix}"), suite.root)
    assert result.accepted, result.problems
    assert any("content hash" in c for c in result.checks)


def test_a_changed_score_is_refused_naming_the_file_whose_hash_differs(bundle: Path) -> None:
    tampered = _repack(
        bundle, _edit_jsonl(f"scores/{KEY}.jsonl", "hidden-topic/ht-2", score=5), rehash=False
    )
    assert f"scores/{KEY}.jsonl has sha256" in _problems(tampered)


def test_a_changed_score_with_fixed_hashes_is_refused_by_the_recomputed_mean(bundle: Path) -> None:
    tampered = _repack(
        bundle, _edit_jsonl(f"scores/{KEY}.jsonl", "hidden-topic/ht-2", score=5), rehash=True
    )
    problems = _problems(tampered)
    assert "summary.json states" in problems and "hidden-topic mean = 3.333" in problems
    assert "per-case scores give 4.0" in problems


def test_a_changed_summary_is_refused_naming_the_split_and_the_number(bundle: Path) -> None:
    def inflate(summary: dict) -> None:
        summary[KEY]["null"]["mean"] = 4.9

    problems = _problems(_repack(bundle, _edit_json("summary.json", inflate), rehash=True))
    assert (
        f"summary.json states {KEY} / null mean = 4.9 but the per-case scores give 4.0" in problems
    )


def test_a_wrong_suite_hash_is_refused_against_the_suite_on_disk(
    bundle: Path, suite: Suite
) -> None:
    def other_revision(manifest: dict) -> None:
        manifest["suite"]["content_sha256"] = "0" * 64

    problems = _problems(
        _repack(bundle, _edit_json("manifest.json", other_revision), rehash=True), suite
    )
    assert "suite content hash differs: the manifest says 0000000000000000" in problems
    assert suite.content_sha256[:16] in problems


def test_a_label_that_is_not_the_suites_is_refused(bundle: Path, suite: Suite) -> None:
    edit = _edit_jsonl(f"scores/{KEY}.jsonl", "hidden-topic/ht-1", label="an easier topic")
    problems = _problems(_repack(bundle, edit, rehash=True), suite)
    assert (
        f"scores/{KEY}.jsonl: 1 label(s) differ from the suite's (first: hidden-topic/ht-1)" in problems
    )


def test_scores_from_another_judge_version_are_refused(bundle: Path) -> None:
    edit = _edit_jsonl(f"scores/{KEY}.jsonl", "null/nl-0", prompt_version="topic-v0")
    assert "another judge version than the manifest states" in _problems(
        _repack(bundle, edit, rehash=True)
    )


class _ConstantJudge:
    """Grades every answer 1 under the fixture's judge name and prompt version."""

    name = JUDGE
    prompt_version = PROMPT

    def score(self, requests: Sequence[JudgeRequest]) -> list[Score]:
        return [Score(r.case_id, 1, self.name, self.prompt_version, raw="1") for r in requests]


@pytest.fixture
def constant_judge():
    JUDGES.register("lb-constant", "test judge: always 1")(lambda arg, **options: _ConstantJudge())
    yield "lb-constant"
    JUDGES.remove("lb-constant")


def test_rejudging_a_sample_refuses_scores_the_judge_does_not_give(
    bundle: Path, suite: Suite, constant_judge: str
) -> None:
    result = verify(bundle, suite.root, rejudge_sample=4, judge_spec=constant_judge, seed=1)
    assert not result.accepted
    assert f"re-judging 4 sampled cases of {KEY} gave a different score" in "\n".join(result.problems)


def test_rejudging_a_sample_accepts_scores_the_judge_gives(
    tmp_path: Path, suite: Suite, constant_judge: str
) -> None:
    run = make_run(tmp_path / "runs", "ones", {"hidden-topic": [1] * 6}, suite)
    result = verify(
        pack(run, tmp_path / "ones.zip"), suite.root, rejudge_sample=4, judge_spec=constant_judge
    )
    assert result.accepted, result.problems


def test_verify_command_exits_1_and_prints_the_reason(bundle: Path) -> None:
    tampered = _repack(
        bundle, _edit_jsonl(f"scores/{KEY}.jsonl", "hidden-topic/ht-2", score=5), rehash=True
    )
    app = typer.Typer()
    app.callback()(lambda: None)
    commands.register(app)
    runner = CliRunner()
    refused = runner.invoke(app, ["verify", str(tampered)])
    assert (
        refused.exit_code == 1
        and "REFUSED" in refused.output
        and "hidden-topic mean" in refused.output
    )
    accepted = runner.invoke(app, ["verify", str(bundle)])
    assert accepted.exit_code == 0 and "ACCEPTED" in accepted.output


# ---------------------------------------------------------------- archives that would fill memory

GiB = 1 << 30
ZERO_BLOCK = bytes(1 << 20)


def _deflated_zeros(head: bytes, zero_blocks: int, tail: bytes) -> tuple[bytes, int, int]:
    """Raw deflate of head + zero_blocks MiB of zeros + tail, its crc32 and length, made in about a
    second: after a full flush the compressor emits the same bytes for the same block, so one
    compressed MiB of zeros is repeated instead of compressing GiBs."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    blocks = [c.compress(ZERO_BLOCK) + c.flush(zlib.Z_FULL_FLUSH) for _ in range(3)]
    assert blocks[1] == blocks[2], "the compressor did not reach a steady state"
    data = first + blocks[0] + blocks[1] * (zero_blocks - 1) + c.compress(tail) + c.flush()
    crc = zlib.crc32(head)
    for _ in range(zero_blocks):
        crc = zlib.crc32(ZERO_BLOCK, crc)
    return data, zlib.crc32(tail, crc), len(head) + zero_blocks * len(ZERO_BLOCK) + len(tail)


def _huge_tar_gz(path: Path, size: int, kind: bytes = tarfile.REGTYPE) -> Path:
    info = tarfile.TarInfo("scores/huge.jsonl")
    info.size, info.type = size, kind
    head = info.tobuf(format=tarfile.GNU_FORMAT)
    data, crc, length = _deflated_zeros(head, size // len(ZERO_BLOCK), bytes(1024))
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    path.write_bytes(header + data + struct.pack("<II", crc, length & 0xFFFFFFFF))
    return path


def _huge_zip(path: Path, size: int, stated_size: int | None = None) -> Path:
    """A zip64 archive of one deflated member of `size` zero bytes whose headers say `stated_size`."""
    data, crc, length = _deflated_zeros(b"", size // len(ZERO_BLOCK), b"")
    stated = length if stated_size is None else stated_size
    if stated_size is not None:
        crc = zlib.crc32(bytes(stated_size))  # a liar makes the checksum fit what it claims
    name = b"scores/huge.jsonl"
    extra = struct.pack("<HHQQ", 1, 16, stated, len(data))
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 8, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra))
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 8, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra), 0, 0, 0, 0, 0
    )
    body = local + name + extra + data
    directory = central + name + extra
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(directory), len(body), 0)
    path.write_bytes(body + directory + end)
    return path


MEASURE = """
import json, resource, sys, time
from wdqa.leaderboard.bundle import BundleError, verify
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
try:
    problems = verify(sys.argv[1]).problems
except BundleError as err:
    problems = ["BundleError: " + str(err)]
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"problems": problems, "grew_mib": grew / 1024, "seconds": time.perf_counter() - t0}))
"""


def _verify_measured(bundle: Path) -> dict:
    """Verify in a fresh process; its peak memory growth (MiB) and time."""
    done = subprocess.run([sys.executable, "-c", MEASURE, str(bundle)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def huge_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("huge")
    return {
        "tar": _huge_tar_gz(root / "huge.tar.gz", 2 * GiB),
        "zip": _huge_zip(root / "huge.zip", 2 * GiB),
        "lying zip": _huge_zip(root / "lying.zip", 2 * GiB, stated_size=100),
        "pax header": _huge_tar_gz(root / "pax.tar.gz", 2 * GiB, kind=tarfile.XHDTYPE),
    }


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_a_small_archive_holding_a_2_gib_member_is_refused_quickly_in_bounded_memory(
    huge_bundles: dict[str, Path], kind: str
) -> None:
    assert huge_bundles[kind].stat().st_size < 8 << 20
    measured = _verify_measured(huge_bundles[kind])
    assert measured["problems"] == [
        "member scores/huge.jsonl is 2.0 GiB, over the limit of 256.0 MiB per member; the archive was not read further"
    ]
    assert measured["grew_mib"] < 64 and measured["seconds"] < 10, measured


def test_a_zip_whose_header_understates_its_member_is_read_only_as_far_as_the_header_says(
    huge_bundles: dict[str, Path],
) -> None:
    measured = _verify_measured(huge_bundles["lying zip"])
    assert measured["grew_mib"] < 64 and measured["seconds"] < 10, measured
    assert any("bundle.json is missing" in p for p in measured["problems"]), measured["problems"]


def test_a_tar_header_asking_for_a_2_gib_read_is_refused_without_reading(huge_bundles: dict[str, Path]) -> None:
    measured = _verify_measured(huge_bundles["pax header"])
    assert measured["grew_mib"] < 64 and measured["seconds"] < 10, measured
    assert measured["problems"] == [
        "a tar header asks to read 2147483648 bytes at once; the archive was not read further"
    ]


def test_a_member_that_is_no_archive_is_one_bundle_error(tmp_path: Path) -> None:
    fake = tmp_path / "fake.tar.gz"
    fake.write_bytes(b"not gzip at all")
    with pytest.raises(BundleError, match=r"bundle .*fake.tar.gz is not a readable tar archive"):
        verify(fake)
