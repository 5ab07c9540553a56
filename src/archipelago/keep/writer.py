"""Packs files into shared blocks of at most 64 MiB and produces a normalized manifest.

Small files share blocks, large files span several; each full block is handed to `submit` as
soon as it fills, so uploads run while the next block is read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import BinaryIO

from .locator import BLOCK_SIZE
from .manifest import Segment, render

READ_SIZE = 1 << 20


def hash_only(data: bytes) -> Future[str]:
    """A submit function that stores nothing: the manifest a real upload would produce."""
    future: Future[str] = Future()
    future.set_result(f"{hashlib.md5(data).hexdigest()}+{len(data)}")
    return future


def _split_path(path: str) -> tuple[str, str]:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"invalid file path in collection: {path!r}")
    return "/".join([".", *parts[:-1]]), parts[-1]


class ManifestWriter:
    def __init__(self, submit: Callable[[bytes], Future[str]] = hash_only, block_size: int = BLOCK_SIZE):
        self._submit = submit
        self._block_size = block_size
        self._buffer = bytearray()
        self._blocks: list[Future[str]] = []
        # dir -> file -> (block index, offset, length), resolved to locators in finish()
        self._files: dict[str, dict[str, list[tuple[int, int, int]]]] = {}
        self.bytes_written = 0

    def _flush(self) -> None:
        if self._buffer:
            self._blocks.append(self._submit(bytes(self._buffer)))
            self._buffer = bytearray()

    def write_file(self, path: str, source: BinaryIO | bytes | Iterable[bytes],
                   progress: Callable[[int], None] | None = None) -> None:
        """Add a file; repeated paths are concatenated, as in a manifest."""
        dirname, name = _split_path(path)
        segments = self._files.setdefault(dirname, {}).setdefault(name, [])
        if isinstance(source, bytes | bytearray):
            chunks: Iterable[bytes] = [bytes(source)]
        elif hasattr(source, "read"):
            chunks = iter(lambda: source.read(READ_SIZE), b"")  # type: ignore[union-attr]
        else:
            chunks = source  # type: ignore[assignment]
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                room = self._block_size - len(self._buffer)
                piece = view[:room]
                offset = len(self._buffer)
                self._buffer += piece
                if segments and segments[-1][0] == len(self._blocks) and sum(segments[-1][1:]) == offset:
                    block, start, length = segments[-1]
                    segments[-1] = (block, start, length + len(piece))
                else:
                    segments.append((len(self._blocks), offset, len(piece)))
                view = view[len(piece):]
                self.bytes_written += len(piece)
                if progress:
                    progress(len(piece))
                if len(self._buffer) >= self._block_size:
                    self._flush()

    def add_directory(self, path: str) -> None:
        """An empty directory, kept in the manifest as `0:0:\\056`."""
        parts = [p for p in path.split("/") if p not in ("", ".")]
        self._files.setdefault("/".join([".", *parts]), {})

    def finish_tree(self) -> dict[str, dict[str, list[Segment]]]:
        """Flush the last block, wait for every upload; the files as directory -> name -> segments."""
        self._flush()
        locators = [future.result() for future in self._blocks]
        return {
            dirname: {
                name: [(locators[block], offset, length) for block, offset, length in segments]
                for name, segments in files.items()
            }
            for dirname, files in self._files.items()
        }

    def finish(self) -> str:
        """Flush the last block, wait for every upload, and return the normalized manifest."""
        return render(self.finish_tree())
