"""Where a gateway's data lies: one small interface, one class per kind of store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from ..errors import BadRequest, NotFound


@dataclass(frozen=True)
class StoredObject:
    name: str  # relative to the store, "/"-separated
    size: int
    version: str  # changes whenever the object does (mtime and size; an ETag)


class ObjectStore(Protocol):
    def objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under `prefix` ("" for all; an object's own name for just it), sorted."""
        ...

    def open(self, name: str) -> BinaryIO: ...

    def version(self, name: str) -> str: ...


class PathStore:
    """Files under a directory (local or NFS). Names never leave the root."""

    def __init__(self, root: Path):
        self.root = root.resolve()

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if path != self.root and not path.is_relative_to(self.root):
            raise BadRequest(f"{name!r} is outside this gateway's root")
        return path

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        start = self._path(prefix)
        if start.is_file():
            yield self._object(start)
            return
        if not start.is_dir():
            raise NotFound(f"{prefix!r} is not under this gateway's root {self.root}")
        for directory, dirnames, filenames in os.walk(start):
            dirnames.sort()
            for filename in sorted(filenames):
                path = Path(directory) / filename
                if path.is_file():
                    yield self._object(path)

    def _object(self, path: Path) -> StoredObject:
        stat = path.stat()
        return StoredObject(path.relative_to(self.root).as_posix(), stat.st_size, f"{stat.st_mtime_ns}-{stat.st_size}")

    def open(self, name: str) -> BinaryIO:
        return open(self._path(name), "rb")

    def version(self, name: str) -> str:
        try:
            return self._object(self._path(name)).version
        except FileNotFoundError:
            return "gone"
