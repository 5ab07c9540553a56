"""A collection's files by path, without its whole manifest: the API's
`GET /arvados/v1/collections/{UUID or PDH}/files` (a directory's listing, a file's signed
segments), page by page; and the part of a collection under a path as a manifest of its own, which
the download code reads as it reads a whole one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from ..formats.manifest import Segment, render
from ..rpc import ApiRequestError
from .client import ApiClient

PAGE = 10_000  # the most the endpoint answers at once


def collection_files(client: ApiClient, key: str, path: str = "", recursive: bool = False,
                     segments: bool = False) -> Iterator[dict[str, Any]]:
    """The items at `path` ("" is the top): a file alone, or a directory's children (with
    `recursive`, everything below it: each directory's files, then its subdirectories')."""
    parts = path.split("/")
    if "\\" in path:  # the API takes no backslash in a path (as downloads): ask for what is above it
        above = "/".join(parts[:next(n for n, part in enumerate(parts) if "\\" in part)])
        found = False
        for item in _pages(client, key, above, True, segments):
            here = item["path"]
            if (here == path and item["type"] == "file") or (
                    here.startswith(path + "/") and (recursive or here.count("/") == len(parts))):
                found = True
                yield item
        if not found:
            raise ApiRequestError(404, f"no file or directory {path!r} in this collection")
        return
    yield from _pages(client, key, path, recursive, segments)


def _pages(client: ApiClient, key: str, path: str, recursive: bool, segments: bool) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        page = client.request("GET", f"collections/{quote(key, safe='')}/files", params={
            "path": path, "recursive": str(recursive).lower(), "segments": str(segments).lower(),
            "offset": offset, "limit": PAGE})
        yield from page["items"]
        offset += len(page["items"])
        if not page["items"] or offset >= page["items_available"]:
            return


def subtree_manifest(client: ApiClient, key: str, path: str) -> str:
    """A manifest of the file at `path`, or of every file and directory below it, at their places
    in the collection (signed for this client's token)."""
    tree: dict[str, dict[str, list[Segment]]] = {}
    for item in collection_files(client, key, path, recursive=True, segments=True):
        if item["type"] == "file":
            parent, _, name = item["path"].rpartition("/")
            tree.setdefault(f"./{parent}" if parent else ".", {})[name] = [
                (locator, offset, length) for locator, offset, length in item["segments"]]
        else:
            tree.setdefault(f"./{item['path']}", {})
    return render(tree)
