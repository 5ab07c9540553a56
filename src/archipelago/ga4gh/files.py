"""A collection's files as the download endpoint, DRS and WES read them: found by path in the
manifest, cut to a byte range, and read block by block through the keep client with the reader's
own token (keepstore checks each block's signature; a block of a restricted collection is never
served outside its cluster)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import ArchipelagoError, NotFound
from ..formats.manifest import Segment, parse
from ..keep.client import KeepClient
from ..keep.services import KeepService

Tree = dict[str, dict[str, list[Segment]]]
RANGE = re.compile(r"bytes=([0-9]{0,40})-([0-9]{0,40})")  # ASCII digits, a number int() takes quickly


class RangeNotSatisfiable(ArchipelagoError):
    status = 416

    def __init__(self, message: str, size: int):
        super().__init__(message)
        self.size = size


@dataclass(frozen=True)
class Entry:
    """A file (segments) or a directory (children: name -> is it a directory) of a collection."""

    path: str
    segments: list[Segment] | None = None
    children: dict[str, bool] | None = None

    @property
    def is_file(self) -> bool:
        return self.segments is not None

    @property
    def size(self) -> int:
        return sum(s[2] for s in self.segments or [])

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def tree_of(manifest_text: str) -> Tree:
    return parse(manifest_text).tree()


def entry(tree: Tree, path: str) -> Entry:
    """The file or directory at `path` ("" is the top), or 404 naming it."""
    stream = f"./{path}" if path else "."
    parent, _, name = f"./{path}".rpartition("/")
    if path and name in tree.get(parent, {}):
        return Entry(path, segments=tree[parent][name])
    children: dict[str, bool] = {}
    prefix = stream + "/"
    for dirname, files in tree.items():
        if dirname == stream:
            children.update((file, False) for file in files)
        elif dirname.startswith(prefix):
            children[dirname[len(prefix):].split("/", 1)[0]] = True
    if stream in tree or children:
        return Entry(path, children=children)
    raise NotFound(f"no file or directory {path!r} in this collection")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) asked for by a Range header; None for the whole file (no header, several ranges
    or a malformed one: a server may ignore those, RFC 9110 §14.2); 416 if nothing of it exists."""
    if not header:
        return None
    match = RANGE.fullmatch(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # the last N bytes
        if int(last) == 0:
            raise RangeNotSatisfiable(f"range {header!r}: a suffix of zero bytes is empty", size)
        return max(0, size - int(last)), size
    start = int(first)
    end = size if not last else int(last) + 1
    if last and end <= start:
        return None  # invalid: ignored, as RFC 9110 lets a server do
    if start >= size:
        raise RangeNotSatisfiable(f"range {header!r} starts at or past the end of the file ({size} bytes)", size)
    return start, min(end, size)


def read_range(keep: KeepClient, token: str, segments: list[Segment], start: int, end: int) -> Iterator[bytes]:
    """Bytes [start, end) of a file, one piece per block touched (only those blocks are read)."""
    position = 0
    for locator, offset, length in segments:
        if position >= end:
            return
        if position + length > start:
            block = keep.get(locator, token)
            lo, hi = offset + max(start - position, 0), offset + min(end - position, length)
            yield bytes(memoryview(block)[lo:hi])
        position += length


def read_all(keep: KeepClient, token: str, segments: list[Segment]) -> bytes:
    return b"".join(read_range(keep, token, segments, 0, sum(s[2] for s in segments)))


def keep_client(services: list[dict[str, Any]]) -> KeepClient:
    """A keep client over this cluster's keep services and gateways, with no block cache: each
    request's blocks are read with that request's token, never handed to another reader."""
    return KeepClient([KeepService.from_record(item) for item in services], cache=None)
