"""Content-based identifiers and file paths inside a collection, judged as a stranger's words.

A DRS id is a PDH (the whole collection: a bundle) or `PDH/path` (a file or a directory in it);
both name the same bytes forever. `<md5>-<size>` is accepted for `<md5>+<size>` (the `+` must
otherwise be percent-encoded in a URL). A path never leaves the collection: `.`, `..`, empty
components, NUL and backslashes are refused (400), whatever encoding brought them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from ..errors import BadRequest
from ..ids import PDH_RE, UUID_RE

DASHED_PDH = re.compile(r"([0-9a-f]{32})-([0-9]+)")


@dataclass(frozen=True)
class ObjectId:
    pdh: str
    path: str  # "" for the whole collection

    def __str__(self) -> str:
        return f"{self.pdh}/{self.path}" if self.path else self.pdh

    def child(self, name: str) -> ObjectId:
        return ObjectId(self.pdh, f"{self.path}/{name}" if self.path else name)

    def quoted(self) -> str:
        """The id as one URL path segment (`+` and `/` percent-encoded)."""
        return quote(str(self), safe="")


def file_path(path: str) -> str:
    """A path inside a collection, normalised: components joined by `/`, none of them `.`, `..` or
    empty (a trailing `/` is allowed), no NUL or backslash (400 otherwise)."""
    if "\0" in path or "\\" in path:
        raise BadRequest(f"file path {path!r} holds a NUL or a backslash")
    parts = path.removesuffix("/").split("/") if path.strip("/") else []
    if any(part in ("", ".", "..") for part in parts):
        raise BadRequest(f"file path {path!r} is not a plain path inside the collection (no '.', '..' or "
                         "empty components)")
    return "/".join(parts)


def object_id(text: str) -> ObjectId:
    """A DRS id (already percent-decoded): `PDH` or `PDH/path`, PDH also as `<md5>-<size>`."""
    head, _, rest = text.partition("/")
    if dashed := DASHED_PDH.fullmatch(head):
        head = f"{dashed.group(1)}+{dashed.group(2)}"
    if not PDH_RE.fullmatch(head):
        raise BadRequest(f"{text!r} is not a DRS id of this service: a portable data hash (<md5>+<size>, or "
                         "<md5>-<size>), optionally followed by /path")
    return ObjectId(head, file_path(rest))


def collection_key(text: str) -> str:
    """A collection named in a download URL: its UUID or its PDH (`<md5>-<size>` accepted)."""
    if dashed := DASHED_PDH.fullmatch(text):
        return f"{dashed.group(1)}+{dashed.group(2)}"
    if PDH_RE.fullmatch(text) or UUID_RE.fullmatch(text):
        return text
    raise BadRequest(f"{text!r} is neither a collection UUID nor a portable data hash")
