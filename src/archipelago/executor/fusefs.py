"""A collection as a read-only FUSE filesystem, read lazily: a container that reads one file of a
large collection fetches only the blocks of that file (through this cluster's keepstore, so blocks
held by other clusters come through the federation and its cache).

Also the `keep` mount (every collection by PDH). Runs as its own process
(`python -m archipelago.executor.fusefs PDH|keep MOUNTPOINT STATS`), so that
libfuse's signal handling stays out of the executor's; it unmounts on SIGTERM and writes the bytes
it read from each cluster to STATS as JSON. A warm executor starts one ahead (`--warm`, `Warm`):
its imports are done before a container arrives, and it is told what to mount (and with which
tokens) on its stdin, never on its command line or in its environment.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import subprocess
import sys
import threading
from collections import Counter
from typing import Any

from ..errors import ArchipelagoError
from ..formats.locator import Locator
from ..formats.manifest import Segment, parse
from ..ids import PDH_RE
from ..lifetime import die_with_parent
from ..sdk.client import ApiClient
from ..sdk.collection import read_segments


def unavailable() -> str | None:
    """None if collections can be mounted with FUSE here, else why not."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not usable by this user"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"no FUSE library ({exc})"
    return None


class CollectionFS:
    """The manifest as a tree of paths; reads fetch the blocks a range touches."""

    def __init__(self, manifest_text: str, client: ApiClient):
        self.keep = client.keep()
        self.files: dict[str, tuple[int, list[Segment]]] = {}
        self.dirs: dict[str, set[str]] = {"/": set()}
        for dirname, files in parse(manifest_text).tree().items():
            base = "/" + dirname[2:] if dirname != "." else ""
            self._add_dir(base or "/")
            for name, segments in files.items():
                path = f"{base}/{name}"
                self.files[path] = (sum(s[2] for s in segments), segments)
                self.dirs[base or "/"].add(name)
        self.read_by_cluster: Counter[str] = Counter()
        self._fetched: set[str] = set()
        self._lock = threading.Lock()

    def _add_dir(self, path: str) -> None:
        """The directory and every missing parent (a stream ./a/b/c makes a and a/b too)."""
        if path in self.dirs:
            return
        parent, _, name = path.rpartition("/")
        self._add_dir(parent or "/")
        self.dirs[parent or "/"].add(name)
        self.dirs[path] = set()

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        if path in self.dirs:
            return {"st_mode": stat.S_IFDIR | 0o555, "st_nlink": 2, "st_size": 0}
        if path in self.files:
            return {"st_mode": stat.S_IFREG | 0o444, "st_nlink": 1, "st_size": self.files[path][0]}
        raise _error(errno.ENOENT)

    def readdir(self, path: str, fh: Any) -> list[str]:
        if path not in self.dirs:
            raise _error(errno.ENOTDIR)
        return [".", "..", *sorted(self.dirs[path])]

    def open(self, path: str, flags: int) -> int:
        if path not in self.files:
            raise _error(errno.ENOENT)
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise _error(errno.EROFS)
        return 0

    def read(self, path: str, size: int, offset: int, fh: Any) -> bytes:
        total, segments = self.files[path]
        return read_segments(self.keep, segments, offset, min(offset + size, total), self._count)

    def _count(self, locator: str, size: int) -> None:
        """Each block once: what crossed from Keep (later reads come from the client's cache)."""
        parsed = Locator.parse(locator)
        with self._lock:
            if parsed.md5 in self._fetched:
                return
            self._fetched.add(parsed.md5)
            remote = parsed.remote_signature
            self.read_by_cluster[remote.cluster_id if remote and remote.cluster_id else "local"] += size


class KeepFS:
    """Arvados' `keep` mount: every collection readable with this token, at /<PDH>/..., each
    opened (its manifest fetched) the first time a path under it is used."""

    def __init__(self, clients: list[ApiClient], known: dict[str, tuple[int, str]] | None = None):
        self.clients = clients  # tried in order: the container's own token, then the requester's
        self._collections: dict[str, CollectionFS | None] = {}
        self._known = dict(known or {})  # PDH -> (the client that read it, its manifest): the executor's
        self._lock = threading.Lock()

    @property
    def read_by_cluster(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for fs in self._collections.values():
            if fs is not None:
                total.update(fs.read_by_cluster)
        return total

    def _split(self, path: str) -> tuple[CollectionFS, str]:
        _, pdh, rest = path.split("/", 2) if path.count("/") >= 2 else (*path.split("/", 1), "")
        with self._lock:
            if pdh not in self._collections:
                self._collections[pdh] = self._open(pdh) if PDH_RE.fullmatch(pdh) else None
            found = self._collections[pdh]
        if found is None:
            raise _error(errno.ENOENT)
        return found, "/" + rest

    def _open(self, pdh: str) -> CollectionFS | None:
        if pdh in self._known:
            which, manifest_text = self._known.pop(pdh)
            if 0 <= which < len(self.clients):
                return CollectionFS(manifest_text, self.clients[which])
        for client in self.clients:
            try:
                return CollectionFS(client.collections.get(pdh)["manifest_text"], client)
            except ArchipelagoError:
                continue
        return None

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        if path == "/":
            return {"st_mode": stat.S_IFDIR | 0o555, "st_nlink": 2, "st_size": 0}
        fs, inner = self._split(path)
        return fs.getattr(inner)

    def readdir(self, path: str, fh: Any) -> list[str]:
        if path == "/":
            return [".", ".."]  # collections are found by name, not listed
        fs, inner = self._split(path)
        return fs.readdir(inner, fh)

    def open(self, path: str, flags: int) -> int:
        fs, inner = self._split(path)
        return fs.open(inner, flags)

    def read(self, path: str, size: int, offset: int, fh: Any) -> bytes:
        fs, inner = self._split(path)
        return fs.read(inner, size, offset, fh)


def _error(code: int) -> Exception:
    import mfusepy

    return mfusepy.FuseOSError(code)


class Warm:
    """A FUSE process started before its container is known (imports done, waiting on stdin)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-m", "archipelago.executor.fusefs", "--warm"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if not k.startswith(("ARCHI_API", "ARVADOS_API"))})

    def take(self, ident: str, mountpoint: str, stats: str, client: ApiClient, elsewhere: ApiClient | None,
             known: dict[str, tuple[int, str]] | None = None) -> subprocess.Popen[bytes] | None:
        """The process, now serving `ident` at `mountpoint` (None if it died meanwhile: start one cold);
        `known`: collections the executor has read already (PDH -> which client read it, manifest)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None or process.stdin is None:
            return None
        order = {"ident": ident, "mountpoint": mountpoint, "stats": stats, "host": client.base, "token": client.token,
                 "insecure": client.insecure, "elsewhere": elsewhere.token if elsewhere else None,
                 "known": known or {}}
        try:
            process.stdin.write(json.dumps(order).encode() + b"\n")
            process.stdin.close()
        except OSError:
            return None
        with contextlib.suppress(OSError):  # it waited at a low priority (the dispatcher's warm executor)
            os.setpriority(os.PRIO_PROCESS, process.pid, os.getpriority(os.PRIO_PROCESS, 0))
        return process

    def discard(self) -> None:
        """Not needed (no collection mounted through FUSE): it exits as its stdin closes."""
        process, self.process = self.process, None
        if process is not None:
            with contextlib.suppress(OSError):
                if process.stdin is not None:
                    process.stdin.close()
            try:
                process.wait(2)
            except subprocess.TimeoutExpired:
                process.kill()


def serve(ident: str, mountpoint: str, stats_path: str, client: ApiClient | None = None,
          elsewhere: str | None = None, known: dict[str, tuple[int, str]] | None = None) -> None:
    import mfusepy

    die_with_parent()
    if client is None:
        client = ApiClient.from_env()
        elsewhere = os.environ.get("ARCHI_ELSEWHERE_TOKEN")
    clients = [client, *([ApiClient(client.base, elsewhere, client.insecure)] if elsewhere else [])]
    filesystem: CollectionFS | KeepFS = KeepFS(clients, known) if ident == "keep" else \
        CollectionFS(client.collections.get(ident)["manifest_text"], client)

    class Operations(mfusepy.Operations):
        def __getattribute__(self, name: str) -> Any:
            if name in ("getattr", "readdir", "open", "read"):
                return getattr(filesystem, name)
            return super().__getattribute__(name)

    try:
        mfusepy.FUSE(Operations(), mountpoint, foreground=True, ro=True, nothreads=False, allow_other=True)
    finally:
        with open(stats_path, "w") as handle:
            json.dump(dict(filesystem.read_by_cluster), handle)


def warm() -> None:
    """`--warm`: wait for what to serve on stdin (one JSON line); nothing (EOF) means not needed."""
    import mfusepy  # noqa: F401 - imported now, not when the container waits for its mount

    die_with_parent()
    line = sys.stdin.readline()
    if not line.strip():
        return
    order = json.loads(line)
    client = ApiClient(order["host"], order["token"], bool(order["insecure"]))
    known = {str(pdh): (int(which), str(text)) for pdh, (which, text) in (order.get("known") or {}).items()}
    serve(order["ident"], order["mountpoint"], order["stats"], client, order.get("elsewhere"), known)


if __name__ == "__main__":
    if sys.argv[1:] == ["--warm"]:
        warm()
    else:
        serve(sys.argv[1], sys.argv[2], sys.argv[3])
