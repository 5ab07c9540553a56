"""Writing files that hold secrets (tokens, keys, configuration with both), keeping a cluster's
files (its database, blocks, caches, logs) away from the host's other users, and writing and
reading around the page cache (O_DIRECT) where the filesystem allows."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from .errors import ArchipelagoError

OWNER_ONLY_UMASK = 0o077


def owner_only() -> None:
    """Everything this process creates from now on is readable by its owner alone. Called first by
    the cluster's long-running services (`cluster up`, `api`, `keepstore`, `gateway`): the database
    holds every token and the blocks every tenant's data. Processes they start for other purposes
    set their own (the executor, which makes files for a container's sandbox user)."""
    os.umask(OWNER_ONLY_UMASK)


def private_directory(path: Path) -> bool:
    """`path` (made with its parents if missing) is its owner's alone; True if it was open to others
    before (an older `cluster init`, or a directory that already existed), so the caller can say so."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    was_open = stat.S_IMODE(path.stat().st_mode) & 0o077 != 0
    if was_open:
        path.chmod(0o700)
    return was_open


def exclusive_directory(path: Path) -> Path:
    """`path`, a directory of this process's user alone, made if missing. One with a name anyone can
    guess (under /tmp) may have been made first by another user of the host, to plant files in it
    or read ours: one that is not ours, or is a link, is refused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise ArchipelagoError(f"{path} exists but is not a directory of this user (uid {os.geteuid()}): another "
                               "user of this host may have made it; remove it or choose another work_dir", 500)
    if stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(0o700)
    return path


def write_private(path: Path, data: str | bytes) -> None:
    """`data` at `path`, readable by its owner only from the first byte, and whole or not at all
    (written beside it, then renamed over it)."""
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        os.chmod(temp, 0o600)  # an older temp file may have had other bits
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


DIRECT_ALIGN = 4096  # O_DIRECT reads and writes whole, aligned blocks of the device


def aligned(length: int) -> int:
    """`length` rounded up to a whole number of DIRECT_ALIGN blocks."""
    return -(-length // DIRECT_ALIGN) * DIRECT_ALIGN


def open_direct(path: str | Path, flags: int, mode: int = 0o600) -> int | None:
    """`path` opened with O_DIRECT added to `flags`; None where the OS or the filesystem (tmpfs)
    does not do O_DIRECT. On this project's VM a fresh page-cache page costs more than the disk
    write it stands for (README, Keep throughput and Transfer)."""
    if not hasattr(os, "O_DIRECT"):
        return None
    try:
        return os.open(path, flags | os.O_DIRECT, mode)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return None
