"""DRS 1.5 over the Backend: objects are a collection (a bundle, by PDH) and the files and
directories in it (by PDH/path). Who may see one is whoever may read some collection with that
PDH — asked of the Backend, which looks on the federation's peers too and refuses (403) restricted
data to readers outside its cluster. Bytes are fetched from the file-download endpoint."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from .. import __version__
from ..backend.interface import Backend, Caller, ListParams, Record
from ..errors import NotFound
from ..keep.client import KeepClient
from .checksums import Checksums, bundle_digest, digest_of, whole_block_md5
from .files import Entry, Tree, entry, read_range, tree_of
from .paths import ObjectId

ACCESS_ID = "https"
MAX_BULK = 1  # the bulk endpoints are not offered (DRS asks for >= 1)


def download_url(base: str, pdh: str, path: str) -> str:
    """The file-download endpoint's URL for a file of a collection."""
    return f"{base}/arvados/v1/collections/{pdh}/files/{quote(path, safe='/')}"


@dataclass
class Drs:
    backend: Backend
    checksums: Checksums
    keep: Callable[[], KeepClient]
    cluster_id: str

    def _collection(self, caller: Caller, pdh: str) -> Record:
        return self.backend.get(caller, "collections", pdh)

    def object(self, caller: Caller, oid: ObjectId, base: str, expand: bool = False,
               extra: tuple[str, ...] = ()) -> Record:
        record = self._collection(caller, oid.pdh)
        tree = tree_of(record["manifest_text"])
        found = entry(tree, oid.path)
        host = urlsplit(base).netloc
        out: Record = {
            "id": str(oid), "self_uri": f"drs://{host}/{oid.quoted()}",
            "size": sum(f.size for f in _files(tree, found)),
            "created_time": record["created_at"], "updated_time": record["created_at"],
            "version": oid.pdh,
            "name": found.name if oid.path else (record.get("name") or oid.pdh),
            "checksums": [{"type": name, "checksum": self._digest(caller, oid, tree, found, name)}
                          for name in ("md5", *[e for e in extra if e != "md5"])],
        }
        if found.is_file:
            out["access_methods"] = [{"type": "https", "access_id": ACCESS_ID, "available": True}]
            out["mime_type"] = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        else:
            out["contents"] = self._contents(tree, oid, found, base, expand)
            if not oid.path:
                out["aliases"] = self._aliases(caller, oid.pdh)
            out["description"] = f"collection {oid.pdh}" + (f", directory {oid.path}" if oid.path else "")
        return out

    def access(self, caller: Caller, oid: ObjectId, access_id: str, base: str) -> Record:
        """The URL of the download endpoint for a file, with the header that authorizes the caller
        there: the token they presented here (nothing they did not already hold)."""
        tree = tree_of(self._collection(caller, oid.pdh)["manifest_text"])
        found = entry(tree, oid.path)
        if access_id != ACCESS_ID or not found.is_file:
            raise NotFound(f"object {oid} has no access method {access_id!r}"
                           + ("" if found.is_file else ": it is a bundle (fetch its contents)"))
        return {"url": download_url(base, oid.pdh, oid.path), "headers": [f"Authorization: Bearer {caller.token}"]}

    def authorizations(self, caller: Caller | None, oid: ObjectId, base: str) -> Record:
        return {"drs_object_id": str(oid), "supported_types": ["BearerAuth"], "bearer_auth_issuers": [base]}

    def service_info(self, base: str) -> Record:
        return {
            "id": f"org.archipelago.{self.cluster_id}.drs", "name": f"Archipelago DRS on cluster {self.cluster_id}",
            "type": {"group": "org.ga4gh", "artifact": "drs", "version": "1.5.0"},
            "description": "Collections (bundles, by portable data hash) and the files in them (PDH/path)",
            "organization": {"name": f"Archipelago cluster {self.cluster_id}", "url": base},
            "version": __version__, "maxBulkRequestLength": MAX_BULK, "drs": {"maxBulkRequestLength": MAX_BULK},
        }

    # ---------------------------------------------------------------- helpers
    def _contents(self, tree: Tree, oid: ObjectId, found: Entry, base: str, expand: bool) -> list[Record]:
        host = urlsplit(base).netloc
        out = []
        for name, is_dir in sorted((found.children or {}).items()):
            child = oid.child(name)
            item: Record = {"name": name, "id": str(child), "drs_uri": [f"drs://{host}/{child.quoted()}"]}
            if is_dir and expand:
                item["contents"] = self._contents(tree, child, entry(tree, child.path), base, True)
            out.append(item)
        return out

    def _aliases(self, caller: Caller, pdh: str) -> list[str]:
        """The collection records with this content that the caller may read here."""
        params = ListParams(filters=[["portable_data_hash", "=", pdh]], select=["uuid"], limit=100, count="none")
        return sorted(item["uuid"] for item in self.backend.this_cluster().list(caller, "collections",
                                                                                 params)["items"])

    def _digest(self, caller: Caller, oid: ObjectId, tree: Tree, found: Entry, name: str) -> str:
        """Cached, else computed in the background (the caller waits a bounded time)."""
        return self.checksums.get(oid.pdh, oid.path, name, lambda: self._compute(caller, oid.pdh, tree, found, name))

    def _compute(self, caller: Caller, pdh: str, tree: Tree, found: Entry, name: str) -> str:
        if (known := self.checksums.cached(pdh, found.path, name)) is not None:
            return known
        if found.is_file:
            segments = found.segments or []
            value = (whole_block_md5(segments) if name == "md5" else None) or \
                digest_of(name, read_range(self.keep(), caller.token, segments, 0, found.size))
        else:
            value = bundle_digest(name, [self._compute(caller, pdh, tree, entry(tree, _join(found.path, child)), name)
                                         for child in sorted(found.children or {})])
        self.checksums.remember(pdh, found.path, name, value)
        return value


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


def _files(tree: Tree, found: Entry) -> list[Entry]:
    if found.is_file:
        return [found]
    return [f for child in sorted(found.children or {}) for f in _files(tree, entry(tree, _join(found.path, child)))]


def drs_error(status: int, message: str) -> dict[str, Any]:
    return {"msg": message, "status_code": status}
