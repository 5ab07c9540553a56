"""Directory <-> Keep: upload files into packed blocks, download a manifest's files back.

Both sides move whole blocks in parallel through KeepClient; each block is fetched once even
when many small files share it.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..files import DIRECT_ALIGN, open_direct
from ..formats.locator import Locator
from ..formats.manifest import Segment, parse
from .client import KeepClient

Progress = Callable[[int], None]


@dataclass
class UploadPlan:
    files: list[tuple[Path, str]]  # (source path, path inside the collection)
    directories: list[str]  # empty directories to keep
    total_bytes: int


def plan_upload(paths: Iterable[Path]) -> UploadPlan:
    """Every regular file under `paths`, named relative to the path given (a file keeps its name)."""
    files: list[tuple[Path, str]] = []
    directories: list[str] = []
    for root in map(Path, paths):
        if root.is_file():
            files.append((root, root.name))
            continue
        if not root.is_dir():
            raise FileNotFoundError(f"no such file or directory: {root}")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = Path(dirpath).relative_to(root)
            if not dirnames and not filenames and rel != Path("."):
                directories.append(rel.as_posix())
            for name in sorted(filenames):
                files.append((Path(dirpath) / name, (rel / name).as_posix()))
    return UploadPlan(files, directories, sum(src.stat().st_size for src, _ in files))


class ResumeCache:
    """What an interrupted upload already stored: per file (size, mtime) -> signed segments.

    Kept in a JSON file; a file is reused only if unchanged and its signatures stay valid for
    at least another hour. Deleted once the collection is saved.
    """

    MARGIN = 3600

    def __init__(self, path: Path):
        self.path = path
        try:
            self.entries: dict[str, dict] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.entries = {}

    @classmethod
    def for_upload(cls, paths: Iterable[Path], destination: str, token: str | None) -> ResumeCache:
        key = hashlib.sha1("\0".join([destination, token or "", *sorted(str(Path(p).resolve()) for p in paths)])
                           .encode()).hexdigest()
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "archipelago" / "put"
        return cls(base / f"{key}.json")

    def lookup(self, name: str, source: Path) -> list[Segment] | None:
        entry = self.entries.get(name)
        stat = source.stat()
        if not entry or entry["size"] != stat.st_size or entry["mtime_ns"] != stat.st_mtime_ns:
            return None
        segments = [(loc, off, n) for loc, off, n in entry["segments"]]
        for locator, _, _ in segments:
            signature = Locator.parse(locator).signature
            if signature is not None and signature.expiry < time.time() + self.MARGIN:
                return None
        return segments

    def record(self, done: dict[str, list[Segment]], sources: dict[str, Path]) -> None:
        changed = False
        for name, segments in done.items():
            if name not in self.entries and name in sources:
                stat = sources[name].stat()
                self.entries[name] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "segments": segments}
                changed = True
        if changed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temp = self.path.with_suffix(".tmp")
            temp.write_text(json.dumps(self.entries))
            os.replace(temp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def upload(client: KeepClient, plan: UploadPlan, progress: Progress | None = None,
           resume: ResumeCache | None = None) -> str:
    """Store the planned files; returns the normalized, signed manifest.

    With a ResumeCache, files stored by an earlier, interrupted run are not sent again, and
    progress is recorded as blocks finish so that this run can be resumed in turn.
    """
    from .writer import ManifestWriter

    uploader = client.uploader()
    writer = ManifestWriter(uploader.submit)
    sources = {name: source for source, name in plan.files}
    recorded_at = 0
    try:
        for source, name in plan.files:
            stored = resume.lookup(name, source) if resume else None
            if stored is not None:
                writer.add_stored(name, stored)
                if progress:
                    progress(sum(n for _, _, n in stored))
                continue
            with open(source, "rb") as handle:
                writer.write_file(name, handle, progress)
            if resume is not None and writer.blocks_submitted != recorded_at:  # once per block, not per file
                recorded_at = writer.blocks_submitted
                resume.record(writer.completed_files(), sources)
        for directory in plan.directories:
            writer.add_directory(directory)
        manifest_text = writer.finish()
        if resume is not None:  # everything is stored: a failure after this point re-sends nothing
            resume.record(writer.completed_files(), sources)
        return manifest_text
    finally:
        uploader.close()


DIRECT_MIN = 1 << 20  # pieces below this are written through the page cache
PART_SUFFIX = ".archi-part"  # a file being downloaded; renamed to its name once every block is verified


def download(client: KeepClient, manifest_text: str, dest: Path, progress: Progress | None = None,
             subpath: str = "") -> int:
    """Write the manifest's files (those under `subpath`) below `dest`; returns bytes written.

    Each file is written under a temporary name and renamed once all its blocks arrived (each is
    checked against its md5 by the client), so a failed download never leaves a file of the right
    size with the wrong bytes; the partial files are removed. A file already at its place whose
    whole blocks match their md5 (a finished file of an earlier run) is not fetched again."""
    tree = parse(manifest_text).tree()
    prefix = _prefix(subpath)
    # locator -> [(partial file, file offset, block offset, length)]
    uses: dict[str, list[tuple[Path, int, int, int]]] = {}
    remaining: dict[Path, tuple[Path, int]] = {}  # partial file -> (its final name, bytes still to write)
    dest = Path(dest)
    matched = False
    written = 0
    for dirname, files in tree.items():
        for name, segments in files.items():
            target = _target(dest, prefix, dirname, name)
            if target is None:
                continue
            matched = True
            target.parent.mkdir(parents=True, exist_ok=True)
            size = sum(length for _, _, length in segments)
            if _already_there(target, segments, size):
                written += size
                if progress:
                    progress(size)
                continue
            partial = _new_partial(target, size)
            remaining[partial] = (target, size)
            position = 0
            for locator, offset, length in segments:
                uses.setdefault(locator, []).append((partial, position, offset, length))
                position += length
        if not files and (prefix == "." or dirname.startswith(prefix)):
            matched = True
            (dest / dirname[len(prefix) + 1 :]).mkdir(parents=True, exist_ok=True)
    if not matched:
        raise FileNotFoundError(f"{subpath!r} is not in the collection")
    for partial, (target, size) in list(remaining.items()):
        if size == 0:
            os.replace(partial, target)
            del remaining[partial]
    try:
        for locator, data in zip(uses, client.stream_blocks(uses), strict=True):
            for partial, position, offset, length in uses[locator]:
                _write_piece(partial, position, data[offset : offset + length])
                written += length
                target, left = remaining[partial]
                remaining[partial] = (target, left - length)
                if left == length:
                    os.replace(partial, target)
                if progress:
                    progress(length)
    finally:
        for partial, (_, left) in remaining.items():
            if left > 0:
                partial.unlink(missing_ok=True)
    return written


def _new_partial(target: Path, size: int) -> Path:
    """A new file beside `target`, of its size, under a name of its own: no file of the manifest
    (one named like another's partial file: `x` and `x.archi-part`) and no file already there
    is opened or replaced in its place. Created as open() would (0666 less the umask)."""
    while True:
        partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}{PART_SUFFIX}")
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
        return partial


def _write_piece(path: Path, position: int, piece: bytes | bytearray | memoryview) -> None:
    """`piece` at `position` of the file: its whole aligned pages by O_DIRECT where the filesystem
    allows (files.open_direct: on this project's VM fresh page-cache pages cost more than the disk
    write, and writing a 1 GiB download through them took 2.7 of its 3.9 s), the rest buffered."""
    aligned_ok = len(piece) >= DIRECT_MIN and not position % DIRECT_ALIGN and _page_aligned(piece)
    fd = open_direct(path, os.O_WRONLY) if aligned_ok else None
    direct = 0 if fd is None else len(piece) - len(piece) % DIRECT_ALIGN
    if fd is not None:
        try:
            view, done = memoryview(piece)[:direct], 0
            while done < direct:
                done += os.pwrite(fd, view[done:], position + done)
        finally:
            os.close(fd)
    if direct < len(piece):
        with open(path, "r+b") as handle:
            handle.seek(position + direct)
            handle.write(piece[direct:])


def _page_aligned(piece: bytes | bytearray | memoryview) -> bool:
    """Whether the bytes start on a page boundary, as O_DIRECT wants (a pooled block buffer, keep/many.py)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(piece)) % DIRECT_ALIGN == 0
    except (TypeError, ValueError):  # read-only or empty: not a pooled buffer
        return False


def _prefix(subpath: str) -> str:
    return "./" + subpath.strip("/") if subpath.strip("/") else "."


def _target(dest: Path, prefix: str, dirname: str, name: str) -> Path | None:
    """Where a file of the manifest goes below `dest`, or None if it is not under `prefix`."""
    full = f"{dirname}/{name}"
    if prefix != "." and not (full == prefix or full.startswith(prefix + "/") or dirname == prefix):
        return None
    return dest / (full[len(prefix) + 1 :] if full != prefix else name)


def would_overwrite(manifest_text: str, dest: Path, subpath: str = "") -> list[Path]:
    """The files a download into `dest` would replace: those already there, except a finished
    download of the same file (whole blocks whose md5s match, which `download` leaves as they are)."""
    found = []
    for dirname, files in parse(manifest_text).tree().items():
        for name, segments in files.items():
            target = _target(Path(dest), _prefix(subpath), dirname, name)
            if (target is not None and (target.exists() or target.is_symlink())
                    and not _already_there(target, segments, sum(length for _, _, length in segments))):
                found.append(target)
    return found


def _already_there(target: Path, segments: list[Segment], size: int) -> bool:
    """A file at `target` of this size made of whole blocks whose md5s match: a finished download."""
    try:
        if target.stat().st_size != size:
            return False
    except OSError:
        return False
    whole = all(offset == 0 and length == Locator.parse(locator).size for locator, offset, length in segments)
    if not segments or not whole:
        return False  # partial-block segments cannot be checked on their own: fetch again
    with open(target, "rb") as handle:
        for locator, _, length in segments:
            if hashlib.md5(handle.read(length)).hexdigest() != Locator.parse(locator).md5:
                return False
    return True
