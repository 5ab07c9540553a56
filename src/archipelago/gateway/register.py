"""Registering external data: each object read once, streaming, cut into the blocks Keep would make
(64 MiB, in order), each block's md5 taken; the result is a manifest whose locators carry the
gateway's `+K@<uuid>` hint, and the map from each block to its object range. Hints are not part of
the PDH, so the collection has the PDH the same files would have in Keep with these block
boundaries, and moving the data later never changes it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from ..formats.locator import BLOCK_SIZE
from ..formats.manifest import Segment, render
from .stores import ObjectStore


@dataclass
class Registered:
    manifest_text: str = ""
    blocks: list[dict[str, object]] = field(default_factory=list)  # rows of the gateway's block map
    objects: int = 0
    bytes: int = 0


def register(store: ObjectStore, gateway_uuid: str, prefix: str,
             progress: Callable[[int], None] | None = None) -> Registered:
    """Blocks and manifest (hinted, unsigned) of every object under `prefix`; names are kept
    relative to `prefix` (a single object keeps its own name)."""
    result = Registered()
    tree: dict[str, dict[str, list[Segment]]] = {".": {}}
    base = prefix.strip("/")
    for stored in store.objects(prefix):
        inside = stored.name[len(base):].lstrip("/") if base and stored.name != base else stored.name.rsplit("/", 1)[-1]
        directory, _, filename = f"./{inside}".rpartition("/")
        segments: list[Segment] = []
        with store.open(stored.name) as handle:
            offset = 0
            while chunk := handle.read(BLOCK_SIZE):
                locator = f"{hashlib.md5(chunk).hexdigest()}+{len(chunk)}"
                result.blocks.append({"gateway_uuid": gateway_uuid, "locator": locator, "object": stored.name,
                                      "offset": offset, "length": len(chunk), "version": stored.version})
                segments.append((f"{locator}+K@{gateway_uuid}", 0, len(chunk)))
                offset += len(chunk)
                if progress:
                    progress(len(chunk))
        if not segments:  # an empty file
            segments.append(("d41d8cd98f00b204e9800998ecf8427e+0", 0, 0))
        tree.setdefault(directory, {})[filename] = segments
        result.objects += 1
        result.bytes += stored.size
    result.manifest_text = render(tree)
    return result
