"""Registering external data: each object read once, streaming, cut into the blocks Keep would make
(64 MiB, in order), each block's md5 taken; the result is a manifest whose locators carry the
gateway's `+K@<uuid>` hint, and the map from each block to its object range. Hints are not part of
the PDH, so the collection has the PDH the same files would have in Keep with these block
boundaries, and moving the data later never changes it."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import BadRequest
from ..formats.locator import BLOCK_SIZE
from ..formats.manifest import ManifestError, Segment, check_paths, render
from ..keep.md5 import md5_hex
from ..keepstore.volumes.base import fast_hasher
from .stores import ObjectStore, StoredObject


@dataclass
class Registered:
    manifest_text: str = ""
    objects: int = 0
    bytes: int = 0


PARALLEL_OBJECTS = 4  # objects read at once (each one streaming, in order)
Known = Callable[[StoredObject], list[dict[str, Any]] | None]  # an object's blocks mapped before, if unchanged
Mapped = Callable[[list[dict[str, Any]]], None]  # records one object's blocks as soon as they are mapped


def register(store: ObjectStore, gateway_uuid: str, prefix: str, progress: Callable[[int], None] | None = None,
             known: Known | None = None, objects: list[StoredObject] | None = None,
             mapped: Mapped | None = None) -> Registered:
    """Blocks and manifest (hinted, unsigned) of every object under `prefix`; names are kept
    relative to `prefix` (a single object keeps its own name). Objects are read a few at a time,
    each one's blocks handed to `mapped` as soon as it is read; one already mapped at the same
    version is not read again — so a registration cut short resumes where it stopped. One object
    that fails does not stop the others: a retry has only the failed ones left to read."""
    result = Registered()
    base = prefix.strip("/")
    objects = list(store.objects(prefix)) if objects is None else objects  # the caller may have listed them
    tree: dict[str, dict[str, list[Segment]]] = {".": {}}
    files: list[tuple[StoredObject, str, str]] = []  # (object, directory, file name), in listing order
    for stored in objects:
        directory, filename = _place(stored, base)
        if filename is None:
            tree.setdefault(directory, {})  # a folder marker: an empty directory unless files go below it
        else:
            tree.setdefault(directory, {})[filename] = []  # no segments: an empty file is `0:0:name`
            files.append((stored, directory, filename))
    try:
        check_paths(tree)  # before reading anything: S3 may hold both `a` and `a/b`
    except ManifestError as exc:
        raise BadRequest(f"cannot register {prefix!r}: {exc.reason}") from None

    def blocks_of(stored: StoredObject) -> list[dict[str, Any]]:
        earlier = known(stored) if known else None
        if earlier is not None:
            if progress:
                progress(stored.size)
            return earlier
        blocks = _map_object(store, gateway_uuid, stored, progress)
        if mapped:
            mapped(blocks)
        return blocks

    with ThreadPoolExecutor(PARALLEL_OBJECTS) as pool:  # leaving it waits for every object, failed or not
        reads = [pool.submit(blocks_of, stored) for stored, _, _ in files]
    for (_, directory, filename), read in zip(files, reads, strict=True):
        blocks = read.result()  # the first failure, once every other object has been read and recorded
        tree[directory][filename] = [(f"{b['locator']}+K@{gateway_uuid}", 0, int(b["length"])) for b in blocks]
    result.objects = len(objects)
    result.bytes = sum(stored.size for stored in objects)
    result.manifest_text = render(tree)
    return result


def _place(stored: StoredObject, base: str) -> tuple[str, str | None]:
    """Where an object goes in the collection: (directory, file name), named relative to the prefix
    registered (a single object keeps its own name); a name ending in "/" (an S3 console's folder)
    is a directory, with no file name. A name that is no path in a collection is refused rather than
    renamed or dropped: either would register other data than the store holds."""
    name = stored.name
    if not base:
        inside = name  # the whole store: every name as it is (not only its last component)
    elif name == base:
        inside = name.rsplit("/", 1)[-1]
    else:
        inside = name[len(base):].lstrip("/")
    folder = inside == "" or inside.endswith("/")  # "" is the folder marker of the prefix itself
    parts = inside.rstrip("/").split("/") if inside.rstrip("/") else []
    if folder and stored.size:
        raise BadRequest(f"object {name!r} ends with '/' but holds {stored.size} bytes: no file in a collection can "
                         f"have its name")
    if any(part in ("", ".", "..") for part in parts):
        raise BadRequest(f"object {name!r} has no path in a collection (an empty, '.' or '..' path component)")
    if folder:
        return "/".join([".", *parts]), None
    return "/".join([".", *parts[:-1]]), parts[-1]


def _map_object(store: ObjectStore, gateway_uuid: str, stored: StoredObject,
                progress: Callable[[int], None] | None) -> list[dict[str, Any]]:
    """The object read once, streaming, cut into Keep's blocks, each block's md5 taken."""
    blocks: list[dict[str, Any]] = []
    with store.open(stored.name, stored.version) as handle:  # ObjectChanged if it changed since listed
        offset = 0
        while chunk := handle.read(BLOCK_SIZE):
            blocks.append(block_row(gateway_uuid, stored.name, offset, chunk, stored.version))
            offset += len(chunk)
            if progress:
                progress(len(chunk))
    return blocks


def block_row(gateway_uuid: str, name: str, offset: int, data: bytes | bytearray | memoryview,
              version: str) -> dict[str, Any]:
    """A row of the block map for `data`, found at `offset` of object `name`: its locator (md5) and
    a fast checksum (xxh3-128) that reads are checked against, as keepstore checks its blocks."""
    return {"gateway_uuid": gateway_uuid, "locator": f"{md5_hex(data)}+{len(data)}", "object": name,
            "offset": offset, "length": len(data), "version": version, "checksum": fast_hasher(data).hexdigest()}
