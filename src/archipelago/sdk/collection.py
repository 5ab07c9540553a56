"""Collection: list, read and write a collection's files, then save — blocks move in parallel
through the keep client; only the manifest goes to the API server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from ..formats.manifest import Segment, parse, portable_data_hash, render
from ..keep.writer import ManifestWriter
from .client import ApiClient


def _split(path: str) -> tuple[str, str]:
    parts = [p for p in path.strip("/").split("/") if p not in ("", ".")]
    if not parts:
        raise ValueError(f"not a file path: {path!r}")
    return "/".join([".", *parts[:-1]]), parts[-1]


class Collection:
    def __init__(self, client: ApiClient, uuid_or_pdh: str | None = None):
        self.client = client
        self.record: dict[str, Any] = {}
        self._tree: dict[str, dict[str, list[Segment]]] = {}
        self._writer: ManifestWriter | None = None
        self._uploader: Any = None
        if uuid_or_pdh:
            self.record = client.collections.get(uuid_or_pdh)
            self._tree = parse(self.record["manifest_text"]).tree()

    @property
    def uuid(self) -> str | None:
        return self.record.get("uuid")

    # ------------------------------------------------------------ reading
    def files(self) -> Iterator[tuple[str, int]]:
        """(path, size) of every file, sorted."""
        for dirname in sorted(self._tree):
            for name in sorted(self._tree[dirname]):
                path = f"{dirname}/{name}"[2:]
                yield path, sum(s[2] for s in self._tree[dirname][name])

    def directories(self) -> list[str]:
        """Every directory below the top, empty ones included, sorted."""
        found = {"/".join(parts[:n]) for dirname in self._tree if (parts := dirname.split("/")[1:])
                 for n in range(1, len(parts) + 1)}
        return sorted(found)

    def segments(self, path: str) -> list[Segment]:
        dirname, name = _split(path)
        try:
            return self._tree[dirname][name]
        except KeyError:
            raise FileNotFoundError(f"{path} is not in the collection") from None

    def read(self, path: str) -> bytes:
        keep = self.client.keep()
        return b"".join(memoryview(keep.get(loc))[off : off + size] for loc, off, size in self.segments(path))

    def open(self, path: str) -> Iterator[bytes]:
        """The file's bytes, one segment at a time (blocks are fetched in parallel, ahead)."""
        segments = self.segments(path)
        keep = self.client.keep()
        for (_, off, size), block in zip(segments, keep.get_many(s[0] for s in segments), strict=True):
            yield bytes(memoryview(block)[off : off + size])

    # ------------------------------------------------------------ writing
    def write(self, path: str, source: bytes | BinaryIO) -> None:
        """Add or replace a file; its blocks start uploading as soon as they fill."""
        if self._writer is None:
            self._uploader = self.client.keep().uploader()
            self._writer = ManifestWriter(self._uploader.submit)
        dirname, name = _split(path)
        self._tree.get(dirname, {}).pop(name, None)
        self._writer.write_file(path, source)

    def link(self, path: str, segments: list[Segment]) -> None:
        """Add or replace a file made of blocks already stored (another collection's segments): by
        reference, no bytes move; blocks held elsewhere are copied home when the collection is saved."""
        dirname, name = _split(path)
        self._tree.setdefault(dirname, {})[name] = list(segments)

    def mkdir(self, path: str) -> None:
        """An empty directory (kept in the manifest as `0:0:\\056`)."""
        dirname, name = _split(path)
        self._tree.setdefault(f"{dirname}/{name}", {})

    def remove(self, path: str) -> None:
        dirname, name = _split(path)
        self._tree.get(dirname, {}).pop(name)

    def manifest_text(self) -> str:
        if self._writer is not None:
            for dirname, files in self._writer.finish_tree().items():
                self._tree.setdefault(dirname, {}).update(files)
            self._uploader.close()
            self._writer = self._uploader = None
        return render(self._tree)

    def portable_data_hash(self) -> str:
        return portable_data_hash(self.manifest_text())

    def _localized(self) -> str:
        """The manifest with remote-signed (+R) blocks copied to this cluster and signed here:
        a cluster only accepts manifests whose blocks it can vouch for (reference §8.2)."""
        text = self.manifest_text()
        if "+R" not in text:
            return text
        keep = self.client.keep()
        replaced: dict[str, str] = {}
        for files in self._tree.values():
            for segments in files.values():
                for n, (locator, offset, size) in enumerate(segments):
                    if "+R" in locator:
                        if locator not in replaced:
                            replaced[locator] = keep.local_copy(locator)
                        segments[n] = (replaced[locator], offset, size)
        return render(self._tree)

    def save(self) -> dict[str, Any]:
        if not self.uuid:
            raise ValueError("this collection has no record yet: use save_new()")
        self.record = self.client.collections.update(self.uuid, {"manifest_text": self._localized()})
        return self.record

    def save_new(self, name: str | None = None, owner_uuid: str | None = None,
                 properties: dict[str, Any] | None = None, ensure_unique_name: bool = True) -> dict[str, Any]:
        attrs: dict[str, Any] = {"manifest_text": self._localized(), "name": name or "New collection"}
        if owner_uuid:
            attrs["owner_uuid"] = owner_uuid
        if properties:
            attrs["properties"] = properties
        self.record = self.client.collections.create(attrs, ensure_unique_name=ensure_unique_name)
        return self.record


def read_segments(keep: Any, segments: list[Segment], start: int, end: int,
                  on_block: Callable[[str, int], None] | None = None) -> bytes:
    """Bytes [start, end) of a file made of `segments`, fetching only the blocks under that range
    (through the keep client and its cache); `on_block(locator, size)` hears of each block read."""
    out, position = [], 0
    for locator, offset, length in segments:
        if position >= end:
            break
        if position + length > start:
            block = keep.get(locator)
            if on_block:
                on_block(locator, len(block))
            out.append(memoryview(block)[offset + max(start - position, 0):offset + min(end - position, length)])
        position += length
    return b"".join(out)
