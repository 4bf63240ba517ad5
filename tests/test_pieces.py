"""Builds in pieces: failed pieces are reported and rebuilt alone; Ray tasks build what local processes build."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest
import torch
from processes import running
from typer.testing import CliRunner
from wdqa.cli import app
from wdqa.core.lora import delta_weight
from wdqa.core.private_labels import read_private_labels
from wdqa.core.suite import MANIFEST, Suite
from wdqa.generators.pieces import (
    PieceError,
    PieceJob,
    RayCluster,
    pack_folder,
    run_pieces,
    unpack_folder,
)
from wdqa.generators.publish.private_split import maintainer_labels_path
from wdqa.generators.shards import Shard
from wdqa.generators.tiny_suite import MICRO_RECIPE, build_suite


def write_marker(out: Path, shard: Shard) -> None:
    out.mkdir(parents=True)
    (out / MANIFEST).write_text(str(shard))


class InProcess:
    """Runs pieces in this process; piece indices in `fail` raise once, like a worker that crashed."""

    def __init__(self, fail: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.fail, self.built = set(fail), []

    def run(self, job: PieceJob, pieces: Sequence[tuple[Shard, Path]]) -> dict[int, str]:
        failed = {}
        for shard, out in pieces:
            if shard.index in self.fail:
                self.fail.discard(shard.index)
                (out / "half-written").parent.mkdir(parents=True)
                failed[shard.index] = "RuntimeError: worker lost"
                continue
            job.build(out, shard, *job.folders)
            self.built.append(shard.index)
        return failed


def test_a_failed_piece_is_reported_and_a_rerun_builds_only_it(tmp_path: Path) -> None:
    job = PieceJob(write_marker)
    with pytest.raises(PieceError, match=r"(?s)1 of 3 pieces failed \(2 finished.*piece 1/3: RuntimeError: worker lost"):
        run_pieces(job, 3, tmp_path / "pieces", InProcess(fail={1}))
    rerun = InProcess()
    outs = run_pieces(job, 3, tmp_path / "pieces", rerun)
    assert rerun.built == [1]
    assert [p.joinpath(MANIFEST).read_text() for p in outs] == ["0/3", "1/3", "2/3"]


def test_a_folder_survives_packing_and_a_hostile_archive_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "a" / "sub" / "x.txt").write_text("weights")
    unpack_folder(pack_folder(tmp_path / "a"), tmp_path / "b")
    assert (tmp_path / "b" / "sub" / "x.txt").read_text() == "weights"

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(tarfile.OutsideDestinationError):
        unpack_folder(buffer.getvalue(), tmp_path / "c")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "c").exists()


def labelled(suite: Suite, split: str) -> pd.DataFrame:
    """A split's index with its labels, a private split's from the maintainers' file beside the suite."""
    if not suite.is_private(split):
        return suite.labelled_index(split)
    return suite.index(split).merge(read_private_labels(maintainer_labels_path(suite.root, split)).table, on="diff_id")


def assert_same_suite(a: Suite, b: Suite) -> None:
    assert sorted(a.splits) == sorted(b.splits)
    for split in a.splits:
        ia, ib = (labelled(s, split).set_index("diff_id").sort_index() for s in (a, b))
        assert list(ia.index) == list(ib.index)
        assert (ia["label"] == ib["label"]).all() and (ia["hit_rate"] == ib["hit_rate"]).all()
        diff_id = ia.index[-1]
        da, db = a.diff(split, diff_id), b.diff(split, diff_id)
        for module in da.modules:
            torch.testing.assert_close(delta_weight(da, module), delta_weight(db, module))


def test_ray_tasks_with_their_own_cache_build_the_suite_local_processes_build(micro_suite: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is in the dev set-up; this only skips outside it")
    worker_cache = tmp_path / "worker-cache"  # no shared disk: workers get the base model shipped to them
    runner = RayCluster("local", init_options={
        "num_cpus": 2, "include_dashboard": False, "log_to_driver": False,
        "runtime_env": {"env_vars": {"WDQA_CACHE": str(worker_cache), "OMP_NUM_THREADS": "1"}},
    })
    out = build_suite(tmp_path / "suite", MICRO_RECIPE, runner)
    assert_same_suite(Suite.load(out), Suite.load(micro_suite))
    assert Suite.load(out).content_sha256 == Suite.load(micro_suite).content_sha256  # the same bytes
    assert list((worker_cache / "models").glob("*/*/config.json")), "the base model was not shipped to the workers"
    assert not (tmp_path / "suite.units").exists()


def test_extra_splits_built_in_pieces_merge_into_one_suite_with_every_diff_in_its_card(micro_suite: Path, tmp_path: Path) -> None:
    out = tmp_path / "extra"
    result = CliRunner().invoke(app, ["generate", "extra", str(micro_suite), "--micro", "--split", "ood-trigger",
                                      "--split", "null", "--pieces", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    suite = Suite.load(out)
    assert set(suite.splits) == {"ood-trigger", "null"}
    assert len(suite.index("ood-trigger")) == 4 and len(suite.index("null")) == 4
    card = (out / "README.md").read_text()
    assert "### `ood-trigger` (4 diffs" in card and "config_name: null" in card


@pytest.mark.parametrize(("args", "message"), [
    (["--ray", "local"], "give --out"),
    (["--workers", "2", "--out", "x", "--shard", "0/2"], "not with --merge or --shard"),
    (["--pieces", "2", "--out", "x", "--gpus-per-piece", "1"], "--gpus-per-piece is for Ray tasks"),
])
def test_pieces_with_missing_or_unusable_options_are_refused_with_what_to_give(args, message, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["generate", "tiny", "--micro", *args])
    assert result.exit_code == 1 and message in result.output


def test_pieces_of_another_build_are_refused_not_merged(tmp_path: Path) -> None:
    with pytest.raises(PieceError, match="1 of 2 pieces failed"):  # piece 0 finished and kept
        run_pieces(PieceJob(write_marker, identity="recipe A"), 2, tmp_path / "pieces", InProcess(fail={1}))
    with pytest.raises(PieceError, match=r"holds pieces of another build \('recipe A', not 'recipe B'\)"):
        run_pieces(PieceJob(write_marker, identity="recipe B"), 2, tmp_path / "pieces", InProcess())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_unit_process_dies_with_the_command_that_started_it(tmp_path: Path) -> None:
    # `timeout` or a kill sends its signal to the command alone, not to the units it spawned, which
    # went on training for minutes after the command was gone.
    (tmp_path / "unitjob.py").write_text(
        "import os, time\n"
        "def sleeper(out, shard):\n"
        "    (out.parent / 'pid').write_text(str(os.getpid()))\n"
        "    time.sleep(300)\n"
    )
    script = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "import unitjob\n"
        "from pathlib import Path\n"
        "from wdqa.generators.pieces import LocalProcesses, PieceJob\n"
        "from wdqa.generators.shards import Shard\n"
        f"LocalProcesses(1).run(PieceJob(unitjob.sleeper), [(Shard(0, 1), Path({str(tmp_path / 'out')!r}))])\n"
    )
    command = subprocess.Popen([sys.executable, "-c", script])
    pid_file = tmp_path / "pid"
    deadline = time.monotonic() + 120
    while not pid_file.exists():
        assert command.poll() is None and time.monotonic() < deadline, "the unit never started"
        time.sleep(0.2)
    unit = int(pid_file.read_text())
    command.kill()
    command.wait()
    deadline = time.monotonic() + 30
    while running(unit):
        if time.monotonic() > deadline:
            os.kill(unit, signal.SIGKILL)
            pytest.fail("the unit process outlived the command that started it")
        time.sleep(0.2)
