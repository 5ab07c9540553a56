"""Saving a container's output directory as a collection, trusting nothing the container left in it.

The directory is walked by descriptor, never following a link, and only regular files are read
(a FIFO or device is skipped, not opened). A symlink is read as the container would read it and
saved only when it leads somewhere the container's output may come from: inside the output
directory (its target's content is saved under the link's name), or into a mounted collection or
the keep mount (saved by reference, as Arvados' crunch-run does: the collection's blocks, no bytes
copied). Anything else — `/etc/shadow`, the cluster's config, another container's files — is an
error in the container's log and is never read.

A file the executor itself copied into the output directory from a collection the container may
read (an InitialWorkDir input) is saved by reference too, when it is still that file: the inode the
executor placed (its own record, never the container's word for where a file came from), with the
same bytes — hashed again (SHA-256) at the end, since the container owned the file and may have
changed it, and restored its size and times. Any other file is read and uploaded.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..formats.manifest import Segment, parse
from ..ids import PDH_RE
from .beneath import DIRECTORY, directory_fd, is_below

MAX_LINK_HOPS = 16  # links to links; a loop ends here
Tree = dict[str, dict[str, list[Segment]]]


@dataclass
class MountedCollection:
    """A collection mounted read-only at `target` in the container (the whole of it, or `subpath`)."""

    target: str
    manifest_text: str
    subpath: str = ""

    def tree(self) -> Tree:
        return parse(self.manifest_text).tree()


@dataclass(frozen=True)
class Placed:
    """A file the executor copied into the output directory from a mounted collection: its blocks
    there, and the size and SHA-256 of the bytes it wrote."""

    segments: tuple[Segment, ...]
    size: int
    sha256: str


Placements = dict[tuple[int, int], Placed]  # (st_dev, st_ino) of the file placed -> what it placed there


def wanted(relative: str, globs: list[str]) -> bool:
    """Is this output path kept by the request's output_glob (all of them without one)?"""
    return not globs or any(fnmatch.fnmatch(relative, g) or relative.startswith(g.rstrip("*/") + "/")
                            for g in globs)


def files_under(tree: Tree, path: str) -> dict[str, list[Segment]]:
    """The collection's file at `path` ({"": segments}), or every file below the directory `path`
    (relative names), or nothing."""
    dirname, _, name = f"./{path}".rstrip("/").rpartition("/") if path else (".", "", "")
    if name and name in tree.get(dirname, {}):
        return {"": tree[dirname][name]}
    top = f"./{path}".rstrip("/") if path else "."
    found = {}
    for directory, files in tree.items():
        if directory == top or directory.startswith(top + "/"):
            for filename, segments in files.items():
                found[f"{directory}/{filename}"[len(top) + 1:]] = segments
    return found


class OutputSaver:
    """Adds the output directory's files to a collection (anything with `write`, `link`, `mkdir`)."""

    def __init__(self, output_dir: Path, output_path: str, collections: list[MountedCollection],
                 keep_target: str | None, manifest_of: Callable[[str], str | None], log: Callable[[str], None],
                 globs: list[str] | None = None, placed: Placements | None = None):
        self.output_dir, self.output_path = output_dir, output_path.rstrip("/") or "/"
        self.placed = placed or {}
        self.by_reference = 0  # bytes of placed inputs saved by reference (not uploaded again)
        self.collections = sorted(collections, key=lambda m: -len(m.target))  # the innermost mount first
        self.keep_target, self.manifest_of, self.log = keep_target, manifest_of, log
        self.globs = globs or []

    def save(self, collection: Any) -> None:
        with directory_fd(self.output_dir, []) as top:
            self._walk(collection, top, "", 0)

    # ---------------------------------------------------------------- the walk
    def _walk(self, collection: Any, fd: int, relative: str, hops: int) -> bool:
        """Adds what is below `fd` as `relative/…`; whether anything was there."""
        entries = sorted(os.scandir(fd), key=lambda e: e.name)
        for entry in entries:
            path = f"{relative}/{entry.name}" if relative else entry.name
            if entry.is_symlink():
                self._link(collection, fd, entry.name, path, hops)
            elif entry.is_dir(follow_symlinks=False):
                child = os.open(entry.name, DIRECTORY, dir_fd=fd)
                try:
                    if not self._walk(collection, child, path, hops) and wanted(path, self.globs):
                        collection.mkdir(path)  # an empty directory is an output too (a tool's mkdir)
                finally:
                    os.close(child)
            elif wanted(path, self.globs):
                self._file(collection, fd, entry.name, path)
        return bool(entries)

    def _file(self, collection: Any, fd: int, name: str, path: str) -> None:
        handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            os.close(handle)
            self.log(f"output {path}: not a regular file (a FIFO, socket or device): not saved")
            return
        with os.fdopen(handle, "rb") as source:
            segments = self._unchanged(source, info)
            if segments is not None:
                collection.link(path, segments)
                self.by_reference += info.st_size
                return
            source.seek(0)
            collection.write(path, source)

    def _unchanged(self, source: Any, info: os.stat_result) -> list[Segment] | None:
        """The blocks of the input the executor placed at this inode, if the file (opened, never
        followed) still holds exactly the bytes placed there; else None (it is uploaded)."""
        placed = self.placed.get((info.st_dev, info.st_ino))
        if placed is None or placed.size != info.st_size:
            return None
        digest = hashlib.sha256()
        while chunk := source.read(1 << 20):
            digest.update(chunk)
        return list(placed.segments) if digest.hexdigest() == placed.sha256 else None

    # ---------------------------------------------------------------- links
    def _link(self, collection: Any, fd: int, name: str, path: str, hops: int) -> None:
        target = os.readlink(name, dir_fd=fd)
        container_dir = posixpath.join(self.output_path, posixpath.dirname(path))
        self._follow(collection, posixpath.normpath(posixpath.join(container_dir, target)), path, hops + 1,
                     f"{path} -> {target}")

    def _follow(self, collection: Any, where: str, path: str, hops: int, shown: str) -> None:
        """Save what container path `where` names as output `path`."""
        if hops > MAX_LINK_HOPS:
            self.log(f"error: output symlink {shown}: too many levels of links: not saved")
        elif is_below(where, self.output_path):
            self._inside_output(collection, where, path, hops, shown)
        elif (mount := self._mount_of(where)) is not None:
            rest = where[len(mount.target):].strip("/")
            self._by_reference(collection, mount.tree(), posixpath.join(mount.subpath, rest).strip("/"), path, shown)
        elif self.keep_target and is_below(where, self.keep_target) and where != self.keep_target:
            pdh, _, rest = where[len(self.keep_target.rstrip("/")) + 1:].partition("/")
            text = self.manifest_of(pdh) if PDH_RE.fullmatch(pdh) else None
            if text is None:
                self.log(f"error: output symlink {shown}: collection {pdh} cannot be read: not saved")
            else:
                self._by_reference(collection, parse(text).tree(), rest, path, shown)
        else:
            self.log(f"error: output symlink {shown} points outside the output directory and the mounted "
                     "collections: not saved (the executor reads no host file for a container)")

    def _mount_of(self, where: str) -> MountedCollection | None:
        return next((m for m in self.collections if is_below(where, m.target)), None)

    def _inside_output(self, collection: Any, where: str, path: str, hops: int, shown: str) -> None:
        relative = where[len(self.output_path):].strip("/")
        if not relative or path == relative or path.startswith(relative + "/"):
            self.log(f"error: output symlink {shown} leads back to itself or a directory holding it: not saved")
            return
        *parents, name = relative.split("/")
        try:
            with directory_fd(self.output_dir, parents) as parent:
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
                if stat.S_ISLNK(info.st_mode):
                    container_dir = posixpath.dirname(where)
                    target = os.readlink(name, dir_fd=parent)
                    self._follow(collection, posixpath.normpath(posixpath.join(container_dir, target)), path,
                                 hops + 1, shown)
                elif stat.S_ISDIR(info.st_mode):
                    child = os.open(name, DIRECTORY, dir_fd=parent)
                    try:
                        self._walk(collection, child, path, hops)
                    finally:
                        os.close(child)
                elif wanted(path, self.globs):
                    self._file(collection, parent, name, path)
        except OSError as exc:  # a dangling link, or one through a link (never followed)
            self.log(f"error: output symlink {shown}: {exc.strerror}: not saved")

    def _by_reference(self, collection: Any, tree: Tree, inside: str, path: str, shown: str) -> None:
        found = files_under(tree, inside)
        if not found:
            self.log(f"error: output symlink {shown}: no such file in the mounted collection: not saved")
        for name, segments in sorted(found.items()):
            full = f"{path}/{name}" if name else path
            if wanted(full, self.globs):
                collection.link(full, segments)
