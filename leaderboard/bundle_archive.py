"""Bundle archives on disk: writing the members `wdqa submit` packs, and reading them back with limits.

Owns the archive formats (.tar.gz, .zip) and the limits that keep a hostile archive from filling
memory: a member's size is checked before it is read, members are read in chunks with a running
count (headers can lie), and the member count and total size are capped. Nothing is extracted to
disk; what the members mean is `bundle.py`'s and `bundle_checks.py`'s business.
"""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from wdqa.core.errors import WdqaError

MiB = 1 << 20
CHUNK = 256 * 1024  # members are read this much at a time
MAX_READ = (
    4 * MiB
)  # no single read from a tar stream is larger (a tar header asking more is hostile)


class BundleError(WdqaError):
    """A bundle that cannot be written or read at all (as opposed to one that does not add up)."""


@dataclass(frozen=True)
class ArchiveLimits:
    """What a bundle may hold. A real bundle is a few MB; these leave room for big suites."""

    member_bytes: int = 256 * MiB
    total_bytes: int = 1024 * MiB
    members: int = 1000


DEFAULT_LIMITS = ArchiveLimits()


@dataclass
class ArchiveContents:
    """The members read (path inside the bundle -> bytes) and why the archive itself is refused."""

    files: dict[str, bytes] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def archive_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar.gz", ".tgz")):
        return "tar"
    raise BundleError(f"bundle {path}: name it *.tar.gz, *.tgz or *.zip")


def write_archive(out: Path, files: dict[str, bytes]) -> None:
    """Members in sorted order with fixed times and modes, so one run packs to the same members."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if archive_kind(out) == "zip":
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in sorted(files.items()):
                zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
        return
    with tarfile.open(out, "w:gz") as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tf.addfile(info, io.BytesIO(data))


def _size(n: int) -> str:
    if n < MiB:
        return f"{n} bytes"
    return f"{n / MiB:.1f} MiB" if n < 1024 * MiB else f"{n / (1024 * MiB):.1f} GiB"


def _member_path(name: str, problems: list[str]) -> str | None:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name:
        problems.append(f"member {name!r} has a path that escapes the bundle; refusing to read it")
        return None
    return path.as_posix()


class _TooLarge(Exception):
    """Raised inside a read that would pass a limit; turned into a problem by the reader."""


class _BoundedStream:
    """A decompressed tar stream that refuses any single read over MAX_READ and any position past
    the archive's total limit, so tarfile's own header parsing cannot allocate a hostile size."""

    def __init__(self, raw: IO[bytes], total: int) -> None:
        self.raw, self.total = raw, total

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > MAX_READ:
            raise _TooLarge(f"a tar header asks to read {n} bytes at once")
        if self.raw.tell() + n > self.total + MAX_READ:
            raise _TooLarge(f"the archive decompresses to more than {_size(self.total)}")
        return self.raw.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        target = offset if whence == 0 else self.raw.tell() + offset
        if whence not in (0, 1) or target > self.total + MAX_READ:
            raise _TooLarge(f"the archive decompresses to more than {_size(self.total)}")
        return self.raw.seek(target)

    def tell(self) -> int:
        return self.raw.tell()


def _read_counted(
    handle: IO[bytes], name: str, declared: int, limits: ArchiveLimits, used: int
) -> bytes:
    """Read one member in chunks; stop as soon as it passes its declared size or a limit."""
    cap = min(declared, limits.member_bytes, limits.total_bytes - used)
    parts, count = [], 0
    while chunk := handle.read(CHUNK):
        count += len(chunk)
        if count > cap:
            raise _TooLarge(
                f"member {name} decompresses to more than {_size(cap)} (its header says {declared} bytes)"
            )
        parts.append(chunk)
    return b"".join(parts)


def _check_header(name: str, size: int, seen: int, total: int, limits: ArchiveLimits) -> str | None:
    if seen > limits.members:
        return f"the archive holds more than {limits.members} members; a bundle holds a handful"
    if size > limits.member_bytes:
        return f"member {name} is {_size(size)}, over the limit of {_size(limits.member_bytes)} per member"
    if total > limits.total_bytes:
        return (
            f"the members add up to more than {_size(limits.total_bytes)}, the limit for a bundle"
        )
    return None


def _read_tar(path: Path, limits: ArchiveLimits, out: ArchiveContents) -> None:
    with gzip.open(path, "rb") as raw:
        stream = _BoundedStream(raw, limits.total_bytes)  # type: ignore[arg-type]
        with tarfile.open(fileobj=stream, mode="r:") as tf:  # type: ignore[call-overload]
            seen = total = 0
            for member in tf:
                seen, total = seen + 1, total + max(member.size, 0)
                refused = _check_header(member.name, member.size, seen, total, limits)
                if refused is not None:
                    out.problems.append(f"{refused}; the archive was not read further")
                    return  # reading on would mean decompressing what was just refused
                name = _member_path(member.name, out.problems)
                if member.isdir() or name is None:
                    continue
                if not member.isfile():
                    out.problems.append(
                        f"member {member.name!r} is a link or device; a bundle holds regular files only"
                    )
                    continue
                handle = tf.extractfile(member)
                data = (
                    _read_counted(handle, name, member.size, limits, total - member.size)
                    if handle
                    else b""
                )
                _add(out, name, data)


def _read_zip(path: Path, limits: ArchiveLimits, out: ArchiveContents) -> None:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        total = 0
        for seen, info in enumerate(infos, 1):
            total += info.file_size
            refused = _check_header(info.filename, info.file_size, seen, total, limits)
            if refused is not None:
                out.problems.append(f"{refused}; the archive was not read further")
                return  # only the central directory was read; nothing was decompressed
        wanted = []
        for info in infos:
            name = _member_path(info.filename, out.problems)
            if info.is_dir() or name is None:
                continue
            if stat.S_IFMT(info.external_attr >> 16) not in (0, stat.S_IFREG):
                out.problems.append(
                    f"member {info.filename!r} is a link or device; a bundle holds regular files only"
                )
            elif info.flag_bits & 0x1:
                out.problems.append(f"member {info.filename!r} is encrypted; a bundle is not")
            else:
                wanted.append((name, info))
        used = 0
        for name, info in wanted:
            with zf.open(info) as handle:
                data = _read_counted(handle, name, info.file_size, limits, used)
            used += len(data)
            _add(out, name, data)


def _add(out: ArchiveContents, name: str, data: bytes) -> None:
    if name in out.files:
        out.problems.append(
            f"member {name} appears twice in the archive; which copy counts would be ambiguous"
        )
    out.files[name] = data


def read_archive(path: str | Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> ArchiveContents:
    """Every regular member of the bundle, read within `limits`; a member the limits or the path
    rules refuse is named in `problems` (the bundle is then refused) and never read into memory."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"bundle {path} does not exist (make one with `wdqa submit RUN_DIR`)")
    kind = archive_kind(path)
    out = ArchiveContents()
    if path.stat().st_size > limits.total_bytes:
        out.problems.append(
            f"the archive is {_size(path.stat().st_size)}, over the limit of {_size(limits.total_bytes)}"
        )
        return out
    try:
        (_read_zip if kind == "zip" else _read_tar)(path, limits, out)
    except _TooLarge as err:
        out.problems.append(f"{err}; the archive was not read further")
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        OSError,
        EOFError,
        zlib.error,
        NotImplementedError,
    ) as err:
        raise BundleError(f"bundle {path} is not a readable {kind} archive: {err}") from err
    return out
