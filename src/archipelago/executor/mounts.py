"""A container's mounts, made on this host: collections fetched from Keep (through this cluster's
keepstore, so collections held by other clusters arrive block by block through the federation),
tmp directories, json/text files, and the output directory. Each mount becomes a host path bound
at the container path by the runtime.

Collections are mounted with FUSE where the machine allows it (fusefs.py: read lazily,
only the blocks the command reads are fetched), else staged: the files the mount names (its `path`,
or the whole collection) are fetched and verified before the command starts. Collections copied
into the output directory and stdin are always staged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ArchipelagoError, Unprocessable
from ..formats.locator import Locator
from ..formats.manifest import parse
from ..sdk.client import ApiClient
from ..sdk.transfer import get_collection
from .beneath import create_beneath, parts_below
from .fusefs import Warm
from .outputs import MountedCollection, Placed, Placements, files_under
from .sandbox import SandboxUser, own_directory

SPECIAL = ("stdin", "stdout", "stderr")
# the own token's answer is awaited this long before the runtime token is asked too: a collection
# held here answers sooner; one held elsewhere is a search of the federation, which takes longer
HEDGE_SECONDS = 0.05


class MountError(ArchipelagoError):
    """A mount could not be made (a missing collection, an unknown kind): the container is Cancelled."""

    status = 422


@dataclass
class Bind:
    source: Path  # on this host
    target: str  # in the container
    writable: bool


@dataclass
class LazyMount:
    process: subprocess.Popen[bytes]
    mountpoint: Path
    stats: Path

    def request_stop(self) -> None:
        """Ask it to unmount, without waiting (it ends while the outputs are saved)."""
        if self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> dict[str, int]:
        """Unmount; the bytes it read, by the cluster that held them."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if os.path.ismount(self.mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True)
        try:
            return {str(k): int(v) for k, v in json.loads(self.stats.read_text()).items()}
        except (OSError, ValueError):
            return {}


@dataclass
class Staged:
    binds: list[Bind] = field(default_factory=list)
    lazy: list[LazyMount] = field(default_factory=list)
    output_dir: Path | None = None
    stdin: Path | None = None
    stdout: int | None = None  # descriptors open for writing, made beneath the output directory
    stderr: int | None = None
    bytes_by_cluster: Counter[str] = field(default_factory=Counter)
    elsewhere: ApiClient | None = None
    workdir: Path = Path(".")
    keep_root: Path | None = None  # the container's FUSE filesystem of Keep, once started
    fuse_failed: bool = False
    fuse_process: subprocess.Popen[bytes] | None = None  # the FUSE filesystem's, once started
    looked_up: dict[str, tuple[ApiClient, dict[str, Any]]] = field(default_factory=dict)  # readable(), ahead
    collections: list[MountedCollection] = field(default_factory=list)  # what output symlinks may point into
    keep_target: str | None = None  # the keep mount's path, if any
    user: SandboxUser | None = None  # who the command runs as: it owns the output and tmp directories
    output_path: str = ""
    warm: Warm | None = None  # a FUSE process started ahead by a warm executor, if any
    read_with_own: dict[str, str] = field(default_factory=dict)  # target -> manifest, read with the container's token
    placed: Placements = field(default_factory=dict)  # input files copied into the output directory (outputs.py)


def readable(ident: str, target: str, client: ApiClient, staged: Staged) -> tuple[ApiClient, dict[str, Any]]:
    """The collection and the client that can read it: the container's own token first (data
    on this cluster, residency included), then the requester's runtime token (data elsewhere).
    Each collection is asked about once (the FUSE view is told the answers: _start_keep_filesystem)."""
    if ident in staged.looked_up:
        return staged.looked_up[ident]
    staged.looked_up[ident] = found = _ask(ident, target, client, staged)
    return found


def _ask(ident: str, target: str, client: ApiClient, staged: Staged) -> tuple[ApiClient, dict[str, Any]]:
    """The own token's answer if it has one; the runtime token is asked too as soon as the own
    token's answer is late (a search of the federation) or is no: it is ready by the time it is needed."""
    pool = ThreadPoolExecutor(2)
    try:
        own = pool.submit(client.collections.get, ident)
        wait([own], HEDGE_SECONDS)
        other = None
        if staged.elsewhere is not None and not (own.done() and own.exception() is None):
            other = pool.submit(staged.elsewhere.collections.get, ident)
        try:
            return client, own.result()
        except ArchipelagoError as exc:
            if other is None or staged.elsewhere is None or exc.status not in (403, 404):
                raise MountError(f"mount {target}: collection {ident} cannot be read: {exc}") from None
            first = exc
        try:
            return staged.elsewhere, other.result()
        except ArchipelagoError as exc:
            reason = first if exc.status == 404 else exc
            raise MountError(f"mount {target}: collection {ident} cannot be read: {reason}") from None
    finally:
        pool.shutdown(wait=False)  # an answer not needed is left to finish on its own


def stage_mounts(container: dict[str, Any], client: ApiClient, workdir: Path, secret_mounts: dict[str, Any],
                 log: Any, lazy: bool = False, elsewhere: ApiClient | None = None,
                 user: SandboxUser | None = None, warm: Warm | None = None) -> Staged:
    """`client` acts with the container's own token (for what is here); `elsewhere`, if given, with
    the runtime token the requester's home issued (for what only other clusters hold). `user`
    owns what the command may write: the output directory and tmp mounts. `warm`, if given, is a
    FUSE process started ahead, used for the first FUSE mount."""
    output_path = container.get("output_path") or ""
    staged = Staged(elsewhere=elsewhere, workdir=workdir, user=user, output_path=output_path, warm=warm)
    mounts = {**(container.get("mounts") or {}), **(secret_mounts or {})}
    staged.output_dir = workdir / "output"
    staged.output_dir.mkdir(parents=True)
    if output_path:
        staged.binds.append(Bind(staged.output_dir, output_path, True))
    if lazy and any(_on_fuse(target, mount, output_path) for target, mount in mounts.items()):
        _start_keep_filesystem(client, staged)  # it starts while the mounts' collections are looked up
    _look_up_ahead(mounts, client, staged)
    try:
        _stage_each(mounts, output_path, client, staged, log, lazy)
        if user is not None:
            _give(staged.output_dir, user)
    except BaseException:
        if staged.fuse_process is not None and staged.keep_root is None:  # started, never handed over
            LazyMount(staged.fuse_process, workdir / "keep", workdir / "keep.stats.json").stop()
        for mount in staged.lazy:
            mount.stop()
        raise
    return staged


def _look_up_ahead(mounts: dict[str, Any], client: ApiClient, staged: Staged) -> None:
    """The mounts' collections looked up at once, not one after another (each may be a search of
    the federation by PDH); a failure is left for the mount itself to report."""
    idents = sorted({str(m.get("portable_data_hash") or m.get("uuid")) for m in mounts.values()
                     if m.get("kind") == "collection" and (m.get("portable_data_hash") or m.get("uuid"))})
    if len(idents) < 2:
        return

    def look_up(ident: str) -> tuple[ApiClient, dict[str, Any]] | None:
        try:
            return readable(ident, ident, client, staged)
        except MountError:
            return None

    with ThreadPoolExecutor(min(8, len(idents))) as pool:
        for ident, found in zip(idents, pool.map(look_up, idents), strict=True):
            if found is not None:
                staged.looked_up[ident] = found


def _inside(target: str, output_path: str) -> bool:
    """A mount below the output directory (copied in: it is part of the output)."""
    return bool(output_path) and target.startswith(output_path.rstrip("/") + "/")


def _on_fuse(target: str, mount: dict[str, Any], output_path: str) -> bool:
    """Whether a mount is read on demand through FUSE (when FUSE is available): Keep itself, and
    read-only collections outside the output directory (those inside are copied: they are output)."""
    return target not in SPECIAL and not _inside(target, output_path) and not mount.get("writable") and \
        mount.get("kind") in ("collection", "keep")


def _stage_each(mounts: dict[str, Any], output_path: str, client: ApiClient, staged: Staged, log: Any,
                lazy: bool) -> None:
    workdir, output_dir = staged.workdir, staged.workdir / "output"
    for n, (target, mount) in enumerate(sorted(mounts.items())):
        if target in SPECIAL:
            continue
        if mount.get("kind") == "collection" and mount.get("writable") and \
                not (mount.get("portable_data_hash") or mount.get("uuid")):
            mount = {"kind": "tmp"}  # a new, empty writable collection: a directory saved as output
        if target == output_path and mount.get("kind") == "tmp":
            continue  # the output directory is the tmp mount itself
        inside_output = _inside(target, output_path)
        if mount.get("kind") == "keep" and not lazy:
            raise MountError(f"mount {target}: a keep mount needs FUSE, which is not available here")
        if lazy and _on_fuse(target, mount, output_path):
            host = _fuse(mount, target, client, workdir / f"mount{n}", staged, log)
            if host is not None:
                staged.binds.append(Bind(host, target, False))
                continue
        host = _make(mount, target, client, workdir / f"mount{n}", staged, log)
        if inside_output:  # copied into the output directory: it is part of the output
            destination = output_dir.joinpath(*parts_below(target, output_path))
            destination.parent.mkdir(parents=True, exist_ok=True)
            manifest = staged.read_with_own.get(target)
            files = files_under(parse(manifest).tree(), str(mount.get("path") or "").strip("/")) \
                if manifest is not None else {}
            staged.placed.update(_place(host, destination, files))
        else:
            staged.binds.append(Bind(host, target, mount.get("kind") == "tmp" or bool(mount.get("writable"))))
    for name in SPECIAL:
        if name in mounts:
            setattr(staged, name, _special(name, mounts[name], output_path, staged, client, workdir, log))


def _make(mount: dict[str, Any], target: str, client: ApiClient, where: Path, staged: Staged, log: Any) -> Path:
    kind = mount.get("kind")
    if kind == "tmp":
        where.mkdir(parents=True)
        if staged.user is not None:
            own_directory(where, staged.user)
        else:
            where.chmod(0o1777)
        return where
    if kind in ("json", "text"):
        where.parent.mkdir(parents=True, exist_ok=True)
        content = mount.get("content")
        where.write_text(json.dumps(content) if kind == "json" else str(content))
        return where
    if kind == "collection":
        return _collection(mount, target, client, where, staged, log)
    raise MountError(f"mount {target}: kind {kind!r} is not supported here "
                     "(collection, keep, tmp, json, text, and file for stdin/stdout/stderr are)")


def _fuse(mount: dict[str, Any], target: str, client: ApiClient, where: Path, staged: Staged,
          log: Any) -> Path | None:
    """The collection (or, for a keep mount, every collection by PDH), read on demand: a path in
    the container's one FUSE filesystem of Keep (`where` is unused: kept for the staged fallback).
    None if FUSE fails here (the collection is then staged)."""
    subpath = str(mount.get("path") or "").strip("/")
    if mount.get("kind") == "keep":
        keep = _keep_filesystem(client, staged, log)
        if keep is None:
            raise MountError(f"mount {target}: a keep mount needs FUSE, which failed here")
        staged.keep_target = target
        return keep
    ident = mount.get("portable_data_hash") or mount.get("uuid")
    if not ident:
        raise MountError(f"mount {target}: a collection mount needs portable_data_hash or uuid")
    _, record = readable(ident, target, client, staged)
    if subpath and not _is_file(record["manifest_text"], subpath) and \
            f"./{subpath}" not in parse(record["manifest_text"]).tree():
        raise MountError(f"mount {target}: {subpath!r} is not in collection {ident}")
    keep = _keep_filesystem(client, staged, log)
    if keep is None:
        return None
    log(f"mount {target}: collection {ident}{'/' + subpath if subpath else ''} (FUSE, read on demand)")
    staged.collections.append(MountedCollection(target, record["manifest_text"], subpath))
    found = keep / record["portable_data_hash"]
    return found / subpath if subpath else found


def _start_keep_filesystem(client: ApiClient, staged: Staged, looked_up: bool = False) -> None:
    """Start the container's FUSE filesystem of Keep (every collection by PDH, read with the
    container's token, else the requester's runtime token); _keep_filesystem waits for it. A warm
    one is started once the mounts' collections are looked up: it is told what was found, and with
    which token, rather than asking the federation again when the command opens them."""
    if staged.fuse_process is not None or staged.fuse_failed or (staged.warm is not None and not looked_up):
        return
    where = staged.workdir / "keep"
    where.mkdir(parents=True, exist_ok=True)
    if staged.warm is not None:
        known = {str(record["portable_data_hash"]): (0 if reader is client else 1, str(record["manifest_text"]))
                 for reader, record in staged.looked_up.values()}
        staged.fuse_process = staged.warm.take("keep", str(where), str(where.with_suffix(".stats.json")), client,
                                               staged.elsewhere, known)
        if staged.fuse_process is not None:
            return
    env = {**os.environ, "ARCHI_API_HOST": client.base, "ARCHI_API_TOKEN": client.token,
           "ARCHI_API_HOST_INSECURE": "1" if client.insecure else "0",
           **({"ARCHI_ELSEWHERE_TOKEN": staged.elsewhere.token} if staged.elsewhere else {})}
    staged.fuse_process = subprocess.Popen(
        [sys.executable, "-m", "archipelago.executor.fusefs", "keep", str(where),
         str(where.with_suffix(".stats.json"))],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _keep_filesystem(client: ApiClient, staged: Staged, log: Any) -> Path | None:
    """The container's FUSE filesystem of Keep once mounted (started on first use if it was not
    yet); None if it cannot start."""
    if staged.keep_root is not None or staged.fuse_failed:
        return staged.keep_root
    _start_keep_filesystem(client, staged, looked_up=True)
    process, where = staged.fuse_process, staged.workdir / "keep"
    assert process is not None
    deadline = time.monotonic() + 10
    while not os.path.ismount(where):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            error = (process.stderr.read() if process.stderr else b"").decode(errors="replace").strip()[-300:]
            log(f"FUSE failed ({error or 'timeout'}); collections are staged instead")
            staged.fuse_failed = True
            return None
        time.sleep(0.005)
    staged.lazy.append(LazyMount(process, where, where.with_suffix(".stats.json")))
    staged.keep_root = where
    return where


def _collection(mount: dict[str, Any], target: str, client: ApiClient, where: Path, staged: Staged,
                log: Any) -> Path:
    ident = mount.get("portable_data_hash") or mount.get("uuid")
    if not ident:
        raise MountError(f"mount {target}: a collection mount needs portable_data_hash or uuid")
    subpath = str(mount.get("path") or "").strip("/")
    reader, record = readable(ident, target, client, staged)
    if reader is client:  # its signatures are the container's: an output may name its blocks
        staged.read_with_own[target] = record["manifest_text"]
    client = reader
    where.mkdir(parents=True)
    try:
        fetched = get_collection(client, record, where, subpath)
    except FileNotFoundError:
        raise MountError(f"mount {target}: {subpath!r} is not in collection {ident}") from None
    _count_by_cluster(record["manifest_text"], subpath, staged.bytes_by_cluster)
    log(f"mount {target}: collection {ident}{'/' + subpath if subpath else ''} ({fetched} bytes)")
    if target not in SPECIAL and not _inside(target, staged.output_path):
        staged.collections.append(MountedCollection(target, record["manifest_text"], subpath))
    return where / Path(subpath).name if _is_file(record["manifest_text"], subpath) else where


def _place(host: Path, destination: Path, files: dict[str, list[Any]]) -> Placements:
    """Copy a staged collection mount (a file or a directory) to `destination` in the output
    directory, hashing each file as it is written; the executor's record of the inputs it placed
    (`files`: the collection's segments by path below the mount, "" for a mount of one file)."""
    placed: Placements = {}
    directory = host.is_dir()

    def copy(source: str, target: str) -> str:
        digest = hashlib.sha256()
        with open(source, "rb") as reading, open(target, "wb") as writing:
            while chunk := reading.read(1 << 20):
                digest.update(chunk)
                writing.write(chunk)
        shutil.copystat(source, target)
        relative = Path(source).relative_to(host).as_posix() if directory else ""
        segments = files.get(relative)
        info = os.stat(target, follow_symlinks=False)
        if segments is not None and sum(s[2] for s in segments) == info.st_size:
            placed[(info.st_dev, info.st_ino)] = Placed(tuple(segments), info.st_size, digest.hexdigest())
        return target

    if directory:
        shutil.copytree(host, destination, copy_function=copy)
    else:
        copy(str(host), str(destination))
    return placed


def _is_file(manifest_text: str, subpath: str) -> bool:
    """Does the mount name one file (rather than a directory, or the whole collection)?"""
    if not subpath:
        return False
    dirname, _, name = f"./{subpath}".rpartition("/")
    return name in parse(manifest_text).tree().get(dirname, {})


def _count_by_cluster(manifest_text: str, subpath: str, counts: Counter[str]) -> None:
    """Bytes of the mounted blocks, by the cluster that holds them (+R hints), for the log."""
    for stream in parse(manifest_text).streams:
        for text in stream.locators:
            locator = Locator.parse(text)
            remote = locator.remote_signature
            counts[remote.cluster_id if remote and remote.cluster_id else "local"] += locator.size or 0


def _special(name: str, mount: dict[str, Any], output_path: str, staged: Staged, client: ApiClient,
             workdir: Path, log: Any) -> Path | int:
    if name == "stdin":
        if mount.get("kind") == "collection":
            host = _collection(mount, "stdin", client, workdir / "stdin", staged, log)
        elif mount.get("kind") in ("json", "text"):
            host = _make(mount, "stdin", client, workdir / "stdin.txt", staged, log)
        else:
            raise MountError("stdin must be a collection (with a path), json or text mount")
        if not host.is_file():
            raise MountError("stdin must name a file")
        return host
    path = str(mount.get("path") or "")
    if mount.get("kind") != "file" or not output_path or not path.startswith(output_path.rstrip("/") + "/"):
        raise Unprocessable(f"{name} must be a file mount under the output path {output_path!r}")
    assert staged.output_dir is not None
    return create_beneath(staged.output_dir, parts_below(path, output_path))  # never a host file through '..'


def _give(directory: Path, user: SandboxUser) -> None:
    """The output directory and what was staged in it, owned by the sandbox user (who may change
    its own output); nothing in it is a link yet, and none is followed."""
    for root, dirnames, filenames in os.walk(directory):
        for name in [*dirnames, *filenames]:
            os.chown(os.path.join(root, name), user.uid, user.gid, follow_symlinks=False)
    own_directory(directory, user)
