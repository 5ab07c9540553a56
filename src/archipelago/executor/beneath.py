"""Paths the executor opens for a container, never outside the container's own directories.

The executor runs with the host's rights; a request's paths and whatever the container left in
its output are the tenant's words. A path is taken apart into components (".." and "." refused)
and opened one directory at a time relative to the one before, never following a link
(`O_NOFOLLOW`): what the container planted cannot steer the executor to a host file.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Iterator
from pathlib import Path

from ..errors import Unprocessable

DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def parts_below(path: str, directory: str) -> list[str]:
    """The components of container path `path` below container directory `directory` (both
    absolute); refused if it is not strictly below it or names "." or ".."."""
    prefix = directory.rstrip("/") + "/"
    if not path.startswith(prefix) or "\0" in path:
        raise Unprocessable(f"{path!r} is not below {directory!r}")
    parts = path[len(prefix):].split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise Unprocessable(f"{path!r} is not a normalised path (no '.', '..' or empty components)")
    return parts


def is_below(path: str, directory: str) -> bool:
    """Is container path `path` (taken lexically, as the container's kernel would after `..`) at or
    below `directory`?"""
    normal = posixpath.normpath(path)
    return normal == directory.rstrip("/") or normal.startswith(directory.rstrip("/") + "/")


@contextlib.contextmanager
def directory_fd(root: Path, parts: list[str], make: bool = False) -> Iterator[int]:
    """An open descriptor of `root/parts…`, reached without following any link (and made, with
    `make`); the root itself is the executor's own directory."""
    fd = os.open(root, DIRECTORY)
    try:
        for part in parts:
            if make:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            child = os.open(part, DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def create_beneath(root: Path, parts: list[str], mode: int = 0o644) -> int:
    """A new (or truncated) regular file at `root/parts…`, its directories made; an fd open for writing."""
    with directory_fd(root, parts[:-1], make=True) as parent:
        return os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                       dir_fd=parent)
