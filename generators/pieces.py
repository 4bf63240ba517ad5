"""Run the `--shard i/n` pieces of a build in parallel: in local processes, or as Ray tasks on a cluster.

Owns where pieces run, shipping their input folders to workers and the finished pieces back (as tar
archives through Ray's object store, so a cluster needs no shared disk), and keeping finished pieces
so a rerun after a crash builds only the missing ones. `build_in_pieces` is the one flow
every piecewise build takes (the tiny suite's hidden-topic splits, the extra splits): run the pieces,
merge them into one suite, drop them. What a piece builds, and how the merge finishes the suite
(its data card, sealing a private split), are the caller's functions.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..core.errors import WdqaError
from ..core.lifetime import die_with_parent
from ..core.registry import Registry
from ..core.suite import MANIFEST
from .cache import build_once, cache_root
from .shards import Shard


@dataclass(frozen=True)
class PieceJob:
    """`build(out_dir, shard, *folders)` writes one piece (a suite folder) into `out_dir`.

    `build` must be picklable (a module-level function, or a `functools.partial` of one). `folders`
    are inputs the build reads (a parent suite, the tiny base model): remote workers get copies, a
    folder inside the wdqa cache at the same place in the worker's cache, so code that finds it
    through the cache (the tiny base model) finds it there too. `identity` names what is built
    (e.g. a recipe revision): finished pieces are reused only by a rerun of the same build.
    """

    build: Callable[..., None]
    folders: tuple[Path, ...] = ()
    identity: str = ""


class PieceError(WdqaError):
    """Some pieces failed; the finished ones are kept, and a rerun builds only the others."""


class PieceRunner(Protocol):
    """Runs `job` for each (shard, out_dir); returns {shard index: error text} for the pieces that failed."""

    def run(self, job: PieceJob, pieces: Sequence[tuple[Shard, Path]]) -> dict[int, str]: ...


def run_pieces(
    job: PieceJob,
    count: int,
    pieces_dir: Path,
    runner: PieceRunner,
    only: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
) -> list[Path]:
    """Build the `count` pieces under `pieces_dir` (skipping those a previous run finished); their folders.

    `only`: build just these pieces, in this order (the others' folders are returned all the same);
    `names`: the pieces' folder names (default `piece-III-of-NNN`). A piece is finished when its suite
    manifest is there (the suite writer writes it last).
    """
    marker = pieces_dir / "build.txt"
    if marker.exists() and marker.read_text() != job.identity:
        raise PieceError(
            f"{pieces_dir} holds pieces of another build ({marker.read_text()!r}, not {job.identity!r}); "
            "delete it, or write to another --out"
        )
    shown = [f" ({name})" for name in names] if names is not None else [""] * count
    names = list(names) if names is not None else [f"piece-{i:03d}-of-{count:03d}" for i in range(count)]
    outs = [pieces_dir / name for name in names]
    wanted = list(range(count)) if only is None else list(only)
    todo = [(Shard(i, count), outs[i]) for i in wanted if not (outs[i] / MANIFEST).exists()]
    if todo:
        pieces_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(job.identity)
        for _, out in todo:
            shutil.rmtree(out, ignore_errors=True)  # the remains of an interrupted piece
        failed = runner.run(job, todo)
        if failed:
            done = len(wanted) - len(failed)
            details = "\n".join(f"  piece {i}/{count}{shown[i]}: {err}" for i, err in sorted(failed.items()))
            raise PieceError(
                f"{len(failed)} of {len(wanted)} pieces failed ({done} finished, kept in {pieces_dir}; "
                f"rerun the same command to build only the missing pieces):\n{details}"
            )
    return outs


def build_in_pieces(
    job: PieceJob,
    count: int,
    out: Path,
    runner: PieceRunner,
    merge: Callable[[Sequence[Path], Path], object],
    cached: bool = False,
) -> Path:
    """Build `job` as `count` `--shard` pieces on `runner`, then `merge(pieces, out)` them into `out`.

    `merge` joins the piece folders into one suite (`shards.merge_suites`) and finishes it. Pieces
    are kept in `<out>.pieces` until the merge, so a rerun after a crash builds only the missing
    ones. `cached`: `out` is a cache entry (written through `build_once`, never half-made).
    """
    pieces_dir = out.parent / f"{'.' if cached else ''}{out.name}.pieces"
    pieces = run_pieces(job, count, pieces_dir, runner)
    if cached:
        build_once(out, lambda tmp: merge(pieces, tmp), MANIFEST)
    else:
        merge(pieces, out)
    shutil.rmtree(pieces_dir, ignore_errors=True)
    return out


@dataclass(frozen=True)
class LocalProcesses:
    """Pieces in fresh local processes (spawned: no forked torch state), `workers` at a time."""

    workers: int

    def run(self, job: PieceJob, pieces: Sequence[tuple[Shard, Path]]) -> dict[int, str]:
        failed: dict[int, str] = {}
        context = multiprocessing.get_context("spawn")
        # A unit trains for minutes: killed with the command (`timeout`, SIGKILL), not left running.
        with ProcessPoolExecutor(max(1, min(self.workers, len(pieces))), mp_context=context,
                                 initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            futures = {shard.index: pool.submit(job.build, out, shard, *job.folders) for shard, out in pieces}
            for index, future in futures.items():
                try:
                    future.result()
                except Exception as err:  # recorded per piece and reported together by run_pieces
                    failed[index] = f"{type(err).__name__}: {err}"
        return failed


@dataclass(frozen=True)
class RayCluster:
    """Pieces as Ray tasks: `address` "auto" joins the running cluster, "local" starts one on this machine,
    anything else is passed to `ray.init` (e.g. "ray://head:10001").

    Every node needs wdqa installed (same version); inputs and results travel through Ray's object
    store, so nodes share no disk.
    """

    address: str = "auto"
    cpus_per_piece: float = 1.0
    gpus_per_piece: float = 0.0  # > 0 on a GPU cluster: Ray then places each piece on a GPU and sets CUDA_VISIBLE_DEVICES
    init_options: dict[str, Any] = field(default_factory=dict)

    def run(self, job: PieceJob, pieces: Sequence[tuple[Shard, Path]]) -> dict[int, str]:
        try:
            import ray
        except ImportError as err:
            raise PieceError("--ray needs Ray: pip install 'wdqa[ray]'") from err
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=None if self.address == "local" else self.address, **self.init_options)
        try:
            places = [_cache_relative(f) for f in job.folders]
            blobs = [ray.put(pack_folder(f)) for f in job.folders]  # stored once, read by every task
            task = ray.remote(num_cpus=self.cpus_per_piece, num_gpus=self.gpus_per_piece, max_retries=0)(
                build_piece_remotely
            )
            # The blobs go as top-level arguments: Ray resolves those (not refs nested in a list) to bytes.
            running = {task.remote(job.build, shard, places, *blobs): (shard, out) for shard, out in pieces}
            failed: dict[int, str] = {}
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                shard, out = running.pop(ready[0])
                try:
                    unpack_folder(ray.get(ready[0]), out)
                except Exception as err:  # a task's error arrives as RayTaskError carrying the worker's traceback
                    failed[shard.index] = f"{type(err).__name__}: {err}"
            return failed
        finally:
            if started_here:
                ray.shutdown()


def build_piece_remotely(build: Callable[..., None], shard: Shard, places: list[str | None], *blobs: bytes) -> bytes:
    """On a Ray worker: unpack the inputs (`places`: where in the cache each goes, None for a temporary
    folder), build the piece in a temporary folder, return it packed."""
    with tempfile.TemporaryDirectory(prefix="wdqa-piece-") as work:
        folders = []
        for n, (cache_path, blob) in enumerate(zip(places, blobs, strict=True)):
            if cache_path is not None:
                # Shared by every piece on this node; a finished copy (or the node's own build) is kept.
                target = cache_root() / cache_path
                if not target.exists():
                    unpack_folder(blob, target, replace=False)
            else:
                target = Path(work) / f"input-{n}"
                unpack_folder(blob, target)
            folders.append(target)
        out = Path(work) / "piece"
        build(out, shard, *folders)
        return pack_folder(out)


def pack_folder(folder: Path) -> bytes:
    """An uncompressed tar of `folder`'s contents (diffs are safetensors: compression buys little)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=".")
    return buffer.getvalue()


def unpack_folder(blob: bytes, target: Path, replace: bool = True) -> None:
    """Unpack next to `target`, then rename: a crash never leaves a half-written folder at `target`.

    With `replace=False` a folder that another process put at `target` meanwhile wins (it may be in use).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.unpacking-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
            tar.extractall(tmp, filter="data")  # "data": no absolute paths, links out or devices
        if target.exists():
            if not replace:
                return
            shutil.rmtree(target)
        try:
            tmp.rename(target)
        except OSError:
            if replace or not target.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cache_relative(folder: Path) -> str | None:
    try:
        return str(folder.resolve().relative_to(cache_root().resolve()))
    except ValueError:
        return None


# Where pieces run: a factory taking (the --ray address or None, local workers, GPUs per piece).
EXECUTORS: Registry[Callable[[str | None, int, float], PieceRunner]] = Registry("executor")


@EXECUTORS.register("local", help="fresh local processes, one per CPU core")
def _local(address: str | None, workers: int, gpus_per_piece: float) -> PieceRunner:
    if gpus_per_piece:
        raise ValueError("--gpus-per-piece is for Ray tasks (--ray); local pieces use this machine's devices")
    return LocalProcesses(workers)


@EXECUTORS.register("ray", help="Ray tasks on a cluster (--ray ADDRESS), each with --gpus-per-piece GPUs")
def _ray(address: str | None, workers: int, gpus_per_piece: float) -> PieceRunner:
    return RayCluster(address or "auto", gpus_per_piece=gpus_per_piece)


def runner_for(ray_address: str | None, workers: int, gpus_per_piece: float = 0.0) -> PieceRunner:
    """`--ray ADDRESS` → Ray tasks (each with `gpus_per_piece` GPUs); otherwise `workers` local processes."""
    return EXECUTORS.get("ray" if ray_address else "local")(ray_address, workers, gpus_per_piece)
