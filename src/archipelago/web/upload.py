"""Uploads from the browser, resumable: the page sends a file in pieces; each piece becomes a block
in Keep (stored with the user's own token, so keepstore signs it for them) and its signed locator
goes back to the page, which remembers them; the last request names the file and its blocks, and
the collection's manifest gains the file (the API checks every signature for the user's token). A
page that was closed or lost its network sends only the pieces it has no locator for."""

from __future__ import annotations

from typing import Any

from ..backend.interface import Caller, Record
from ..errors import BadRequest, Unprocessable
from ..formats.locator import BLOCK_SIZE, Locator
from ..formats.manifest import Segment, parse, render
from ..keep.client import KeepClient
from .federation import Federation
from .listing import clean_path

MAX_PIECE = BLOCK_SIZE
MAX_BLOCKS = 100_000


def store_piece(keep: KeepClient, data: bytes) -> str:
    if not data:
        raise BadRequest("an upload piece holds at least one byte")
    if len(data) > MAX_PIECE:
        raise BadRequest(f"an upload piece is at most {MAX_PIECE} bytes")
    return keep.put(data)


def segments_of(locators: Any, size: Any) -> list[Segment]:
    """The file's segments: each block whole, in order, adding up to `size`."""
    if not isinstance(locators, list) or len(locators) > MAX_BLOCKS or not all(isinstance(x, str) for x in locators):
        raise BadRequest(f"'locators' must be a list of at most {MAX_BLOCKS} block locators")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadRequest("'size' must be the file's size in bytes")
    segments: list[Segment] = []
    for text in locators:
        loc = Locator.parse(text)
        segments.append((text, 0, int(loc.size or 0)))
    if sum(s[2] for s in segments) != size:
        raise Unprocessable(f"the blocks hold {sum(s[2] for s in segments)} bytes, not the file's {size}: "
                            "some pieces are missing; send them again")
    return segments


def add_file(federation: Federation, caller: Caller, uuid: str, path: Any, locators: Any, size: Any) -> Record:
    """The collection with the file at `path` added (or replaced), saved with the user's token."""
    if not isinstance(path, str) or not (clean := clean_path(path)):
        raise BadRequest("'path' must name a file inside the collection")
    if uuid[:5] != federation.home:
        raise Unprocessable(f"files are uploaded to collections of this cluster ({federation.home}); "
                            f"{uuid} is on {uuid[:5]}: upload through that cluster's pages")
    segments = segments_of(locators, size)
    record = federation.backend.get(caller, "collections", uuid, ["uuid", "manifest_text"])
    tree = parse(record.get("manifest_text") or "").tree()
    dirname, _, name = f"./{clean}".rpartition("/")
    if f"{dirname}/{name}" in tree:
        raise Unprocessable(f"{clean} is a directory of this collection")
    tree.setdefault(dirname, {})[name] = segments
    return federation.backend.update(caller, "collections", uuid, {"manifest_text": render(tree)})


def new_collection(federation: Federation, caller: Caller, owner: str, name: str) -> Record:
    name = name.strip() or "New collection"
    return federation.backend.create(caller, "collections", {"name": name, "owner_uuid": owner, "manifest_text": ""},
                                     ensure_unique_name=True)
