"""A volume in a local directory: `<root>/<first 3 hex>/<md5>`.

Writes go to a temporary file in the same directory, are fsynced, then renamed into place, so a
crash at any moment leaves either the whole block or nothing under its name. A volume that fsyncs
writes with O_DIRECT where the filesystem allows: the bytes must reach the disk before the rename
anyway, and copying them into the page cache first cost more CPU than their md5 on this project's
VM (fresh page-cache pages: 150-185 ms per 64 MiB, against 5 ms for O_DIRECT; README, Keep
throughput). Trashed blocks are
renamed `<md5>.trash.<delete_at>`, corrupt ones `<md5>.corrupt.<time>`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import mmap
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ...files import aligned, open_direct, private_directory
from ...keep.errors import BlockNotFound, ReadOnly, VolumeFull, VolumeUnavailable
from .base import BlockReader, BlockWriter, IndexEntry, Volume, fast_hasher

log = logging.getLogger("archipelago.keepstore")
CHECKSUM_XATTR = "user.archipelago.xxh3_128"
_BLOCK_NAME_RE = re.compile(r"[0-9a-f]{32}")
_TRASH_NAME_RE = re.compile(r"([0-9a-f]{32})\.trash\.([0-9]+)")
STALE_TEMP_SECONDS = 24 * 3600
WRITEBACK_STEP = 4 << 20  # the disk is asked to start writing every this many bytes


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # not Linux
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return function


_SYNC_FILE_RANGE = _sync_file_range()
SYNC_FILE_RANGE_WRITE = 2  # start writeback of the range's dirty pages, without waiting for it


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range to disk now, without waiting (sync_file_range).

    A block's fsync at commit then waits only for its last few MiB instead of all 64: the disk
    writes while the rest of the body still arrives and is hashed. This changes nothing about
    durability (commit still fsyncs before the rename), only when the disk starts.
    """
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, offset, length, SYNC_FILE_RANGE_WRITE)  # a failure only means later writeback


STAGE_BYTES = 4 << 20  # a block is gathered into aligned pieces of this size for O_DIRECT
_stages: list[mmap.mmap] = []  # reused: fresh pages cost what the copy into them saves
_stages_lock = threading.Lock()


def _take_stage() -> mmap.mmap:
    with _stages_lock:
        if _stages:
            return _stages.pop()
    return mmap.mmap(-1, STAGE_BYTES)  # page-aligned, as O_DIRECT wants


def _give_stage(stage: mmap.mmap) -> None:
    with _stages_lock:
        if len(_stages) < 16:
            _stages.append(stage)
            return
    stage.close()


def _open_temp(path: Path, direct: bool) -> tuple[int, bool]:
    """The temp file, opened for O_DIRECT writes if wanted and the filesystem allows (tmpfs does not)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    if direct and hasattr(os, "O_DIRECT"):
        fd = open_direct(path, flags, 0o600)  # tenants' data
        if fd is not None:
            return fd, True
        path.unlink(missing_ok=True)  # some filesystems create it before refusing the flag
    return os.open(path, flags, 0o600), False


def _oserror(exc: OSError, what: str) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return VolumeFull(f"volume full while {what}")
    if exc.errno in (errno.EROFS,):
        return ReadOnly(f"volume is read-only ({what})")
    return VolumeUnavailable(f"volume error while {what}: {exc.strerror}")


class _FileReader(BlockReader):
    def __init__(self, path: Path):
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        stat = os.fstat(self._file.fileno())
        self.size, self.mtime_ns = stat.st_size, stat.st_mtime_ns

    def read(self, n: int) -> bytes:
        return self._file.read(n)

    def fast_checksum(self) -> str | None:
        try:
            return os.getxattr(self._file.fileno(), CHECKSUM_XATTR).decode()
        except OSError:  # written before checksums, or a filesystem without user xattrs
            return None

    def file(self) -> BinaryIO:
        return self._file

    def close(self) -> None:
        self._file.close()


class _FileWriter(BlockWriter):
    def __init__(self, final: Path, fsync: bool):
        self._final, self._fsync = final, fsync
        self._temp = final.with_name(f"{final.name}.tmp{secrets.token_hex(4)}")
        self._checksum = fast_hasher()
        self._written = self._flushed = self._staged = 0
        self._stage: mmap.mmap | None = None
        self._fd = -1
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._fd, direct = _open_temp(self._temp, fsync)
        except OSError as exc:
            raise _oserror(exc, "creating a block file") from exc
        if direct:
            self._stage = _take_stage()

    def write(self, chunk: bytes | memoryview) -> None:
        try:
            view = memoryview(chunk)
            self._checksum.update(view)
            if self._stage is not None:
                self._stage_in(view)
                return
            while view:
                written = os.write(self._fd, view)
                view, self._written = view[written:], self._written + written
            if self._fsync and self._written - self._flushed >= WRITEBACK_STEP:
                start_writeback(self._fd, self._flushed, self._written - self._flushed)
                self._flushed = self._written
        except OSError as exc:
            self.abort()
            raise _oserror(exc, "writing a block") from exc

    def _stage_in(self, view: memoryview) -> None:
        assert self._stage is not None
        while view:
            n = min(len(view), STAGE_BYTES - self._staged)
            self._stage[self._staged : self._staged + n] = view[:n]
            self._staged += n
            view = view[n:]
            if self._staged == STAGE_BYTES:
                self._write_stage(STAGE_BYTES)

    def _write_stage(self, length: int) -> None:
        """`length` (a multiple of DIRECT_ALIGN) bytes of the stage, by O_DIRECT, in one write."""
        assert self._stage is not None
        if os.write(self._fd, memoryview(self._stage)[:length]) != length:
            raise OSError(errno.ENOSPC, "short write")  # O_DIRECT writes are whole unless the disk is full
        self._written += length
        self._staged = 0

    def _flush_stage(self) -> None:
        """The last piece, padded to the alignment O_DIRECT needs, then the file cut to its size."""
        assert self._stage is not None
        size = self._written + self._staged
        padded = aligned(self._staged)
        self._stage[self._staged : padded] = bytes(padded - self._staged)
        if padded:
            self._write_stage(padded)
        os.ftruncate(self._fd, size)

    def commit(self) -> None:
        try:
            if self._stage is not None:
                self._flush_stage()
            if self._fsync:
                os.fsync(self._fd)
            with contextlib.suppress(OSError):  # no xattrs: reads fall back to md5
                os.setxattr(self._fd, CHECKSUM_XATTR, self._checksum.hexdigest().encode())
            os.close(self._fd)
            self._fd = -1
            os.replace(self._temp, self._final)
        except OSError as exc:
            self.abort()
            raise _oserror(exc, "committing a block") from exc
        self._release_stage()

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._temp.unlink(missing_ok=True)
        self._release_stage()

    def _release_stage(self) -> None:
        if self._stage is not None:
            _give_stage(self._stage)
            self._stage = None


@dataclass
class DirectoryVolume(Volume):
    root: Path = Path(".")
    fsync: bool = True

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self._keep_private()
        self._remove_stale_temp_files()

    def _keep_private(self) -> None:
        """The root is keepstore's alone (0700), blocks 0600: other users of the host must not read
        every tenant's blocks by their path. A root an older version left open is closed, and said so."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            if private_directory(self.root):
                log.warning("volume %s: %s was readable by other users of this host; now 0700", self.uuid, self.root)
        except PermissionError:  # e.g. a mount point owned by root: the site decides who reads it
            log.warning("volume %s: cannot make %s owner-only (not its owner)", self.uuid, self.root)

    @property
    def device_id(self) -> str:
        return f"directory:{self.root.resolve()}"

    def _path(self, md5: str) -> Path:
        return self.root / md5[:3] / md5

    def _remove_stale_temp_files(self) -> None:
        """Temp files of writes interrupted by a crash: invisible, but they take space."""
        cutoff = time.time() - STALE_TEMP_SECONDS
        for temp in self.root.glob("*/*.tmp*"):
            if temp.stat().st_mtime < cutoff:
                temp.unlink(missing_ok=True)

    def open(self, md5: str) -> BlockReader:
        try:
            return _FileReader(self._path(md5))
        except FileNotFoundError:
            raise BlockNotFound(md5) from None
        except OSError as exc:
            raise _oserror(exc, "opening a block") from exc

    def writer(self, md5: str) -> BlockWriter:
        if self.read_only:
            raise ReadOnly(f"volume {self.uuid} is read-only")
        return _FileWriter(self._path(md5), self.fsync)

    def mtime_ns(self, md5: str) -> int | None:
        try:
            return self._path(md5).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def touch(self, md5: str) -> None:
        if not self.read_only:
            os.utime(self._path(md5))

    def index(self, prefix: str = "") -> Iterator[IndexEntry]:
        for subdir in sorted(self.root.iterdir()):
            if not (subdir.is_dir() and len(subdir.name) == 3 and subdir.name.startswith(prefix[:3])):
                continue
            with os.scandir(subdir) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    if _BLOCK_NAME_RE.fullmatch(entry.name) and entry.name.startswith(prefix):
                        stat = entry.stat()
                        yield IndexEntry(entry.name, stat.st_size, stat.st_mtime_ns)

    def trash(self, md5: str, delete_at: float) -> None:
        path = self._path(md5)
        try:
            path.rename(path.with_name(f"{md5}.trash.{int(delete_at)}"))
        except FileNotFoundError:
            raise BlockNotFound(md5) from None

    def _trashed(self, md5: str | None = None) -> Iterator[tuple[Path, str, int]]:
        pattern = f"{md5[:3]}/{md5}.trash.*" if md5 else "*/*.trash.*"
        for path in self.root.glob(pattern):
            if match := _TRASH_NAME_RE.fullmatch(path.name):
                yield path, match[1], int(match[2])

    def untrash(self, md5: str) -> bool:
        newest = max(self._trashed(md5), key=lambda t: t[2], default=None)
        if newest is None:
            return False
        newest[0].rename(self._path(md5))
        return True

    def empty_trash(self, now: float) -> int:
        deleted = 0
        for path, _, delete_at in self._trashed():
            if delete_at <= now:
                path.unlink(missing_ok=True)
                deleted += 1
        return deleted

    def refresh_checksum(self, md5: str) -> None:
        checksum = fast_hasher()
        with open(self._path(md5), "rb") as handle:
            while chunk := handle.read(1 << 20):
                checksum.update(chunk)
        with contextlib.suppress(OSError):
            os.setxattr(self._path(md5), CHECKSUM_XATTR, checksum.hexdigest().encode())

    def quarantine(self, md5: str) -> None:
        path = self._path(md5)
        with contextlib.suppress(FileNotFoundError):
            path.rename(path.with_name(f"{md5}.corrupt.{int(time.time())}"))
