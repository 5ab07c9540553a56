"""Packs files into shared blocks of at most 64 MiB and produces a normalized manifest.

Small files share blocks, large files span several; each full block is handed to `submit` as
soon as it fills, so uploads run while the next block is read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import BinaryIO

from ..formats.locator import BLOCK_SIZE
from ..formats.manifest import Segment, render
from .md5 import md5_hex

READ_SIZE = 1 << 20
SMALL_BUFFER = 1 << 20  # the first buffer: a collection of small files (a log, a report) never needs a block's


def hash_only(data: bytes | memoryview) -> Future[str]:
    """A submit function that stores nothing: the manifest a real upload would produce."""
    future: Future[str] = Future()
    future.set_result(f"{md5_hex(data)}+{len(data)}")
    return future


def _split_path(path: str) -> tuple[str, str]:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"invalid file path in collection: {path!r}")
    return "/".join([".", *parts[:-1]]), parts[-1]


class ManifestWriter:
    """Block buffers are allocated once and reused when their upload completes (fresh 64 MiB
    allocations cost page faults), and files are read straight into them (no intermediate copy).
    A block's buffer is taken only when the data needs it: small files are packed into a 1 MiB one
    first (a fresh 64 MiB buffer costs 30–200 ms here, zeroed whether used or not), moved into a
    whole block's buffer once they outgrow it.

    `submit(view)` stores one block and returns a future of its locator; it must not keep `view`
    after the future is done, since the buffer behind it is then reused.
    """

    def __init__(self, submit: Callable[[memoryview], Future[str]] = hash_only, block_size: int = BLOCK_SIZE):
        self._submit = submit
        self._block_size = block_size
        self._free: list[bytearray] = []
        self._lock = threading.Lock()
        self._buffer = bytearray(0)  # taken when the first bytes come (_room)
        self._fill = 0
        self._blocks: list[Future[str]] = []
        # dir -> file -> (block index, offset, length), resolved to locators in finish()
        self._files: dict[str, dict[str, list[tuple[int, int, int]]]] = {}
        self._stored: dict[str, dict[str, list[Segment]]] = {}  # files already in Keep (resumed uploads)
        self.bytes_written = 0

    def _take(self, size: int) -> bytearray:
        """A free buffer of at least `size` bytes (one whose upload is done), else a new one."""
        with self._lock:
            for n, buffer in enumerate(self._free):
                if len(buffer) >= size:
                    return self._free.pop(n)
        return bytearray(size)

    def _room(self) -> memoryview:
        """The free part of the current buffer (never empty): a small buffer first, a whole block's
        once the block outgrows it (what was written so far copied into it)."""
        if self._fill == len(self._buffer):
            if not self._buffer:
                self._buffer = self._take(min(SMALL_BUFFER, self._block_size))
            else:
                bigger = self._take(self._block_size)
                bigger[: self._fill] = self._buffer[: self._fill]
                self._buffer = bigger
        return memoryview(self._buffer)[self._fill : self._block_size]

    def _give(self, buffer: bytearray) -> None:
        with self._lock:
            self._free.append(buffer)

    def _flush(self) -> None:
        if self._fill:
            buffer = self._buffer
            future = self._submit(memoryview(buffer)[: self._fill])
            future.add_done_callback(lambda _: self._give(buffer))
            self._blocks.append(future)
            self._buffer, self._fill = bytearray(0), 0  # the next one taken when needed (never at finish)

    def _added(self, segments: list[tuple[int, int, int]], n: int, progress: Callable[[int], None] | None) -> None:
        """Record n bytes just placed at self._fill as part of a file, then advance."""
        offset, block = self._fill, len(self._blocks)
        if segments and segments[-1][0] == block and segments[-1][1] + segments[-1][2] == offset:
            segments[-1] = (block, segments[-1][1], segments[-1][2] + n)
        else:
            segments.append((block, offset, n))
        self._fill += n
        self.bytes_written += n
        if progress:
            progress(n)
        if self._fill == self._block_size:
            self._flush()

    def write_file(self, path: str, source: BinaryIO | bytes | bytearray | Iterable[bytes],
                   progress: Callable[[int], None] | None = None) -> None:
        """Add a file; repeated paths are concatenated, as in a manifest."""
        dirname, name = _split_path(path)
        segments = self._files.setdefault(dirname, {}).setdefault(name, [])
        if hasattr(source, "readinto"):
            while n := source.readinto(self._room()):
                self._added(segments, n, progress)
            return
        if isinstance(source, bytes | bytearray):
            chunks: Iterable[bytes | bytearray] = [source]
        elif hasattr(source, "read"):
            chunks = iter(lambda: source.read(READ_SIZE), b"")
        else:
            chunks = source
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                room = self._room()
                piece = view[: len(room)]
                room[: len(piece)] = piece
                view = view[len(piece) :]
                self._added(segments, len(piece), progress)

    @property
    def blocks_submitted(self) -> int:
        return len(self._blocks)

    def add_stored(self, path: str, segments: list[Segment]) -> None:
        """A file whose blocks are already in Keep (an interrupted upload, resumed)."""
        dirname, name = _split_path(path)
        self._stored.setdefault(dirname, {})[name] = list(segments)

    def completed_files(self) -> dict[str, list[Segment]]:
        """Files written so far whose every block has finished uploading, with their locators."""
        done: dict[str, list[Segment]] = {}
        for dirname, files in self._files.items():
            for name, segments in files.items():
                blocks = {block for block, _, _ in segments}
                if all(b < len(self._blocks) and self._blocks[b].done() and not self._blocks[b].exception()
                       for b in blocks):
                    done[f"{dirname}/{name}"[2:]] = [(self._blocks[b].result(), off, n) for b, off, n in segments]
        return done

    def add_directory(self, path: str) -> None:
        """An empty directory, kept in the manifest as `0:0:\\056`."""
        parts = [p for p in path.split("/") if p not in ("", ".")]
        self._files.setdefault("/".join([".", *parts]), {})

    def finish_tree(self) -> dict[str, dict[str, list[Segment]]]:
        """Flush the last block, wait for every upload; the files as directory -> name -> segments."""
        self._flush()
        locators = [future.result() for future in self._blocks]
        tree: dict[str, dict[str, list[Segment]]] = {d: dict(files) for d, files in self._stored.items()}
        for dirname, files in self._files.items():
            tree.setdefault(dirname, {}).update({
                name: [(locators[block], offset, length) for block, offset, length in segments]
                for name, segments in files.items()
            })
        return tree

    def finish(self) -> str:
        """Flush the last block, wait for every upload, and return the normalized manifest."""
        return render(self.finish_tree())
