"""A collection's files as the data pages show them: directories and sizes, where each file's
blocks live (this cluster's Keep, a gateway, another cluster), and small previews read through the
keep client with the reader's own token (keepstore checks each block's signature for it)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadRequest, NotFound
from ..formats.locator import Locator
from ..formats.manifest import Segment, parse
from ..keep.client import KeepClient
from ..keep.services import KeepService
from ..sdk.collection import read_segments

Tree = dict[str, dict[str, list[Segment]]]
TEXT_PREVIEW_BYTES = 64 << 10
CSV_ROWS = 50
TEXT = {"txt", "log", "md", "json", "yml", "yaml", "cwl", "py", "r", "sh", "fa", "fasta", "vcf", "sam", "bed", "gff",
        "xml", "html", "ini", "cfg", "toml", "ipynb", "sql", "c", "h", "js", "css"}
TABLES = {"csv": ",", "tsv": "\t"}
IMAGES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


def clean_path(path: str) -> str:
    """A path inside a collection: components joined by `/`, none empty, `.` or `..`, no NUL or
    backslash (400 otherwise: a path never leaves its collection)."""
    if "\0" in path or "\\" in path:
        raise BadRequest(f"file path {path!r} holds a NUL or a backslash")
    parts = path.strip("/").split("/") if path.strip("/") else []
    if any(part in ("", ".", "..") for part in parts):
        raise BadRequest(f"file path {path!r} is not a plain path inside the collection (no '.', '..' or empty parts)")
    return "/".join(parts)


@dataclass
class Entry:
    name: str
    path: str
    is_dir: bool
    size: int = 0
    files: int = 0
    where: dict[str, int] = field(default_factory=dict)  # location label -> bytes of this entry held there

    @property
    def preview(self) -> str | None:
        return None if self.is_dir else preview_kind(self.name)


def tree_of(manifest_text: str) -> Tree:
    return parse(manifest_text).tree()


def where_block(locator: str, home: str, gateways: dict[str, str]) -> str:
    """Where one block is read from, as a reader of this cluster would get it."""
    loc = Locator.parse(locator)
    for target in loc.service_hints:
        if target in gateways:
            return f"gateway {target} ({gateways[target]})"
        if "-bi6l4-" in target:  # another cluster's gateway
            return f"gateway {target}"
        if len(target) == 5 and target != home:
            return f"cluster {target}"
    if (remote := loc.remote_signature) is not None and remote.cluster_id != home:
        return f"cluster {remote.cluster_id}"
    return f"Keep on {home}"


def _add(where: dict[str, int], segments: list[Segment], home: str, gateways: dict[str, str]) -> None:
    for locator, _, length in segments:
        label = where_block(locator, home, gateways)
        where[label] = where.get(label, 0) + length


def listing(tree: Tree, path: str, home: str, gateways: dict[str, str]) -> list[Entry]:
    """The entries directly inside directory `path` ("" is the top): directories first, by name."""
    stream = f"./{path}" if path else "."
    if path and stream not in tree and not any(d.startswith(stream + "/") for d in tree):
        raise NotFound(f"no directory {path!r} in this collection")
    dirs: dict[str, Entry] = {}
    files = [Entry(name, f"{path}/{name}".lstrip("/"), False, sum(s[2] for s in segs))
             for name, segs in sorted(tree.get(stream, {}).items())]
    for entry in files:
        _add(entry.where, tree[stream][entry.name], home, gateways)
        entry.files = 1
    for dirname, contents in tree.items():
        if not dirname.startswith(stream + "/"):
            continue
        name = dirname[len(stream) + 1:].split("/", 1)[0]
        entry = dirs.setdefault(name, Entry(name, f"{path}/{name}".lstrip("/"), True))
        for segs in contents.values():
            entry.size += sum(s[2] for s in segs)
            entry.files += 1
            _add(entry.where, segs, home, gateways)
    return [*sorted(dirs.values(), key=lambda e: e.name), *files]


def file_segments(tree: Tree, path: str) -> list[Segment]:
    dirname, _, name = f"./{path}".rpartition("/")
    try:
        return tree[dirname][name]
    except KeyError:
        raise NotFound(f"no file {path!r} in this collection") from None


def is_directory(tree: Tree, path: str) -> bool:
    stream = f"./{path}" if path else "."
    return stream in tree or any(d.startswith(stream + "/") for d in tree)


def preview_kind(name: str) -> str | None:
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension in TABLES:
        return "table"
    if extension in IMAGES:
        return "image"
    if extension in TEXT or name.lower() in ("readme", "license", "makefile", "dockerfile"):
        return "text"
    return None


def image_type(name: str) -> str | None:
    return IMAGES.get(name.rsplit(".", 1)[-1].lower()) if "." in name else None


def keep_client(services: list[dict[str, Any]], token: str) -> KeepClient:
    """A keep client for one reader: their token, and no block cache (blocks are never handed on
    to another reader)."""
    return KeepClient([KeepService.from_record(s) for s in services], token, cache=None, retries=1)


def read_head(keep: KeepClient, segments: list[Segment], limit: int) -> tuple[bytes, bool]:
    """The first `limit` bytes of a file (only the blocks under them are read), and whether there is more."""
    size = sum(s[2] for s in segments)
    return read_segments(keep, segments, 0, min(size, limit)), size > limit


def read_tail(keep: KeepClient, segments: list[Segment], limit: int) -> tuple[bytes, bool]:
    """The last `limit` bytes of a file (a log followed as it grows), and whether some came before."""
    size = sum(s[2] for s in segments)
    return read_segments(keep, segments, max(0, size - limit), size), size > limit


def text_preview(data: bytes, truncated: bool) -> str:
    text = data.decode("utf-8", "replace")
    if truncated and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # no half line at the end
    return text


def table_preview(data: bytes, truncated: bool, name: str) -> list[list[str]]:
    delimiter = TABLES.get(name.rsplit(".", 1)[-1].lower(), ",")
    rows = list(csv.reader(io.StringIO(text_preview(data, truncated)), delimiter=delimiter))
    return rows[:CSV_ROWS + 1]
