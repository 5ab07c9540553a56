"""cwltool's file access for `keep:<PDH>/path` locations: how it globs and reads the outputs of
steps that ran on any cluster, through the home cluster's API and keepstore."""

from __future__ import annotations

import fnmatch
import io
import posixpath
import threading
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import quote, unquote

from cwltool.stdfsaccess import StdFsAccess

from ..errors import ArchipelagoError
from ..sdk.client import ApiClient
from ..sdk.collection import Collection

PREFIX = "keep:"


def split(location: str) -> tuple[str, str]:
    """keep:<pdh>/a/b -> (<pdh>, a/b); a location is a URI, so its path is URL-quoted."""
    pdh, _, path = location[len(PREFIX):].partition("/")
    return pdh, unquote(path.strip("/"))


def keep_location(pdh: str, path: str = "") -> str:
    """(<pdh>, a/b c) -> keep:<pdh>/a/b%20c: names with spaces, '#' or '%' survive as a URI."""
    return f"{PREFIX}{pdh}/{quote(path)}" if path else f"{PREFIX}{pdh}"


def glob_matches(pattern: str, path: str) -> bool:
    """POSIX glob on a collection path, as a shell does: one pattern part per path part ('*' never
    crosses a '/'), and names starting with '.' only where the pattern's part does too."""
    if not path:  # the collection itself: only its own location names it
        return not pattern
    parts, patterns = path.split("/"), pattern.split("/")
    return len(parts) == len(patterns) and all(
        fnmatch.fnmatchcase(part, want) and (not part.startswith(".") or want.startswith("."))
        for part, want in zip(parts, patterns, strict=True))


@dataclass
class KeepCache:
    """What one run has learned of collections, shared by all its file accesses: those read (a
    step's output, read once, is what the next step's inputs and the final output read too), those
    the runner may not read from home (data that stays on its cluster: only its steps read it), and
    whether sizes are asked for now or left for later (while the job order is read, before the plan
    has asked the clusters about every input at once)."""

    collections: dict[str, Collection] = field(default_factory=dict)
    refused: dict[str, OSError] = field(default_factory=dict)
    sizes_later: bool = False


class KeepFsAccess(StdFsAccess):
    def __init__(self, basedir: str, client: ApiClient, cache: KeepCache | None = None):
        super().__init__(basedir)
        self.client = client
        self.cache = cache if cache is not None else KeepCache()
        self._collections = self.cache.collections
        self._entries_of: dict[str, tuple[dict[str, int], set[str]]] = {}
        self._lock = threading.Lock()

    def collection(self, pdh: str) -> Collection:
        """The collection, read once. One the runner may not read is an OSError (cwltool takes it
        as "unknown"), remembered too."""
        with self._lock:
            if pdh in self.cache.refused:
                error = self.cache.refused[pdh]
                raise type(error)(*error.args)
            if pdh not in self._collections:
                try:
                    self._collections[pdh] = Collection(self.client, pdh)
                except ArchipelagoError as exc:
                    kind = PermissionError if exc.status == 403 else FileNotFoundError
                    self.cache.refused[pdh] = kind(f"keep:{pdh}: {exc}")
                    raise kind(f"keep:{pdh}: {exc}") from None
            return self._collections[pdh]

    def _entries(self, pdh: str) -> tuple[dict[str, int], set[str]]:
        """Files (path -> size) and directories of a collection."""
        collection = self.collection(pdh)  # raises before anything is cached for an unreadable one
        with self._lock:
            if pdh not in self._entries_of:  # cwltool asks isfile/isdir per glob result: computed once
                self._entries_of[pdh] = dict(collection.files()), {"", *collection.directories()}
            return self._entries_of[pdh]

    def glob(self, pattern: str) -> list[str]:
        if not pattern.startswith(PREFIX):
            return super().glob(pattern)
        pdh, path = split(pattern)
        files, dirs = self._entries(pdh)
        return sorted(keep_location(pdh, p) for p in (*files, *dirs) if glob_matches(path, p))

    def open(self, fn: str, mode: str) -> IO[Any]:
        if not fn.startswith(PREFIX):
            return super().open(fn, mode)
        pdh, path = split(fn)
        data = self.collection(pdh).read(path)
        return io.BytesIO(data) if "b" in mode else io.StringIO(data.decode("utf-8"))

    def exists(self, fn: str) -> bool:
        return self.isfile(fn) or self.isdir(fn) if fn.startswith(PREFIX) else super().exists(fn)

    def size(self, fn: str) -> int:
        if not fn.startswith(PREFIX):
            return super().size(fn)
        pdh, path = split(fn)
        if self.cache.sizes_later and pdh not in self._collections:  # cwltool asks for sizes as a courtesy
            raise FileNotFoundError(f"{fn}: its size is filled in once the clusters have been asked")
        return self._entries(pdh)[0][path]

    def isfile(self, fn: str) -> bool:
        if not fn.startswith(PREFIX):
            return super().isfile(fn)
        pdh, path = split(fn)
        try:
            return path in self._entries(pdh)[0]
        except PermissionError:
            return True  # not ours to look into; the step that reads it will say if it is missing
        except FileNotFoundError:
            return False

    def isdir(self, fn: str) -> bool:
        if not fn.startswith(PREFIX):
            return super().isdir(fn)
        pdh, path = split(fn)
        try:
            return path in self._entries(pdh)[1]
        except OSError:
            return False

    def listdir(self, fn: str) -> list[str]:
        if not fn.startswith(PREFIX):
            return super().listdir(fn)
        pdh, path = split(fn)
        files, dirs = self._entries(pdh)
        prefix = f"{path}/" if path else ""
        children = {p[len(prefix):].split("/")[0] for p in (*files, *dirs) if p.startswith(prefix) and p != path}
        return sorted(keep_location(pdh, f"{prefix}{child}") for child in children if child)

    def join(self, path: str, *paths: str) -> str:
        """Like os.path.join, with a keep: location as absolute as a path starting with /."""
        for n in range(len(paths) - 1, -1, -1):
            if paths[n].startswith(PREFIX):
                return posixpath.join(paths[n], *paths[n + 1:])
        if path.startswith(PREFIX):
            return posixpath.join(path, *paths)
        return super().join(path, *paths)

    def realpath(self, path: str) -> str:
        return path if path.startswith(PREFIX) else super().realpath(path)
