"""Collections: a record pointing at a manifest. The manifest is validated, its block signatures
checked for the caller, and stored stripped; reads sign it for the reader. A collection may also be
asked for by its PDH. Residency: readers outside the cluster see the metadata of a restricted
collection but never its manifest."""

from __future__ import annotations

import threading
import time
from functools import cached_property
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.orm import defer

from ..auth.caller import Caller, Record
from ..auth.permissions import READ
from ..auth.residency import check_policy, refuse
from ..db.changes import signal_path
from ..db.models import Collection, ReleasedCopy
from ..db.outbox import content_key, note_head
from ..errors import Forbidden, NotFound, Unprocessable
from ..formats import manifest as manifests
from ..formats.locator import EMPTY_LOCATOR, Locator
from ..formats.signing import SignatureError, sign_locator, sign_manifest, strip_signatures, verify_locator
from ..ids import PDH_RE, UUID_RE
from ..times import aware, now
from .base import Context, Resource
from .collection_files import FileIndexes, FilesQuery, Signer, answer

MANIFEST_FIELDS = ("manifest_text", "unsigned_manifest_text")


def index_key(row: Any) -> str:
    """A collection version: it names one manifest text, hints and all, forever."""
    return f"{row.uuid}.{row.version}"


class Collections(Resource):
    name = "collections"
    class_name = "Collection"
    content_addressed = True
    project_contents: ClassVar[list[list[Any]] | None] = []
    model = Collection
    writable = frozenset({"name", "description", "properties", "manifest_text", "replication_desired",
                          "storage_classes_desired", "owner_uuid", "portable_data_hash", "trash_at", "delete_at",
                          "residency"})
    admin_only = frozenset({"residency"})
    hidden_in_lists = frozenset(MANIFEST_FIELDS)  # manifests are left out of plain listings
    echoed = frozenset({"unsigned_manifest_text"})
    unique_names = trashable = can_own = True

    def validate(self, ctx: Context, attrs: dict[str, Any], row: Any | None = None) -> None:
        check_policy(attrs)

    def derived_fields(self, ctx: Context, attrs: dict[str, Any], owner: str, row: Any | None = None) -> dict[str, Any]:
        if row is None:
            return self._gateway_residency(self._manifest_fields(ctx, attrs))
        if "manifest_text" in attrs:
            return {**self._gateway_residency(self._manifest_fields(ctx, attrs)), "version": row.version + 1}
        return {}

    def _gateway_residency(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Data served by a gateway under a residency policy carries that policy: set here, by the
        server, whoever writes the manifest (clients may not set residency; it stays once set, even
        when the data moves on, until an admin clears it)."""
        policies = {str(g.uuid): g.residency for g in self.config.gateways if g.residency}
        if policies:
            for stream in manifests.parse(fields["manifest_text"]).streams:
                for token in stream.locators:
                    if hinted := [policies[h] for h in Locator.parse(token).service_hints if h in policies]:
                        return {**fields, "residency": hinted[0]}
        return fields

    def after_write(self, ctx: Context, row: Any, before: dict[str, Any] | None) -> None:
        """Data moved (same PDH, other copies read): the copies left behind are nominated for
        release (gateway/release.py decides, later, whether nothing else reads them). Resolvers hear
        of the content held here and of the identifiers this collection carries (db/outbox.py). A
        manifest just written is indexed for listings by path (collection_files.py), in the background."""
        written, self._written.tree = getattr(self._written, "tree", None), None
        if written is not None and written[0] == row.portable_data_hash and (before is None
                                                                           or "manifest_text" in before):
            self.file_indexes.prepare_later(index_key(row), int(written[0].rpartition("+")[2]), written[1])
        old_pdh = before.get("portable_data_hash") if before else None
        note_head(ctx.session, row.uuid, content_key(row.portable_data_hash), old_pdh and content_key(old_pdh))
        if not before or before.get("portable_data_hash") != row.portable_data_hash \
                or before.get("manifest_text") in (None, row.manifest_text):
            return
        left = manifests.block_copies(before["manifest_text"]) - manifests.block_copies(row.manifest_text)
        for locator, place in left:
            ctx.session.merge(ReleasedCopy(locator=locator, place=place, since=time.time()))

    def _manifest_fields(self, ctx: Context, attrs: dict[str, Any]) -> dict[str, Any]:
        """Validate the manifest, check its signatures for this caller, store it stripped.

        A manifest the official Arvados SDK would read otherwise than we do (a zero-length block
        between blocks with data: the files after it read as empty; a path both a file and a
        directory) is refused with 422 naming the stream and the rule, never normalized: Arvados
        stores what the client sent and computes the PDH over it, and clients rely on that — arv-put
        prints the PDH of what it wrote, arv-copy sends the PDH it expects, a federation finds a
        collection by it. Rewriting the text would give the data a PDH no other cluster gives it
        and hide the writer's bug; a loud 422 leaves the client to fix its manifest. Arvados' own
        writers produce neither (from input that has neither)."""
        text = attrs.pop("manifest_text", "") or ""
        try:
            parsed = manifests.parse(text)
            tree = parsed.tree()
            manifests.check_interop(parsed, tree)
        except manifests.ManifestError as exc:
            raise Unprocessable(f"invalid manifest_text: {exc}") from None
        signing = self.config.collections
        if signing.blob_signing and not ctx.caller.is_admin:
            key = signing.blob_signing_key.encode()
            for stream in parsed.streams:
                for locator in stream.locators:
                    if locator.startswith(EMPTY_LOCATOR):
                        continue
                    try:
                        verify_locator(locator, ctx.caller.token, signing.blob_signing_ttl, key)
                    except SignatureError as exc:
                        raise Forbidden(f"block {locator[:43]}: {exc} (re-upload or use a freshly signed "
                                        f"manifest)") from None
        stored = strip_signatures(text)
        pdh = manifests.portable_data_hash(stored)
        given = attrs.pop("portable_data_hash", None)
        if given and given.split("+")[0] != pdh.split("+")[0]:
            raise Unprocessable(f"portable_data_hash {given} does not match the manifest ({pdh})")
        self._written.tree = (pdh, tree)  # for after_write: the index is built from it (listings by path)
        return {
            "manifest_text": stored,
            "portable_data_hash": pdh,
            "file_count": sum(len(files) for files in tree.values()),
            "file_size_total": sum(s[2] for files in tree.values() for segs in files.values() for s in segs),
        }

    # ---------------------------------------------------------------- reads
    def lookup(self, ctx: Context, key: str, select_: list[str] | None) -> Record | None:
        """By PDH: any readable collection with that content; the one trashed last, since
        signatures clamp to trash_at."""
        if not PDH_RE.fullmatch(key):
            return None
        out = ctx.renderer(self._by_content(ctx, key), select_)
        out["uuid"] = key  # as Arvados: a content address, not one record
        return out

    def _by_content(self, ctx: Context, key: str, *options: Any) -> Any:
        rows = ctx.session.scalars(select(Collection).options(*options).where(
            Collection.portable_data_hash == key, Collection.is_trashed.is_(False)))
        readable = [r for r in rows if ctx.perms.can(READ, r.uuid, r.owner_uuid)]
        if not readable:
            raise NotFound(f"collection {key} not found")
        if ctx.outside:
            readable = [r for r in readable if not self._restricted(ctx, r)]
            if not readable:
                raise refuse(self.config.cluster_id, f"collection {key}", ctx.reader)
        return max(readable, key=lambda r: (r.trash_at is None, r.trash_at or now()))

    def files(self, ctx: Context, key: str, query: FilesQuery) -> Record:
        """One directory's listing or one file's segments (signed for the caller) from the index of
        the manifest, read exactly as GET would let the caller read the collection (404, or 403
        for restricted data outside the cluster); the manifest itself is loaded only to index it."""
        deferred = defer(Collection.manifest_text)
        if PDH_RE.fullmatch(key):
            row = self._by_content(ctx, key, deferred)
        else:
            row = ctx.session.get(Collection, key, options=[deferred]) if UUID_RE.fullmatch(key) else None
            if row is None or not self.visible(ctx.perms, row) or row.is_trashed:
                raise NotFound(f"collection {key} not found")
            self.guard_read(ctx, row)
        index = self.file_indexes.open(index_key(row), int(row.portable_data_hash.rpartition("+")[2]),
                                       lambda: row.manifest_text)
        try:
            found = answer(index, query, self._signer(row, ctx.caller))
        finally:
            index.close()
        return {"kind": "arvados#collectionFiles", "collection": key, "portable_data_hash": row.portable_data_hash,
                **found}

    @cached_property
    def _written(self) -> threading.local:
        """The tree of the manifest this thread's write validated, until its after_write."""
        return threading.local()

    @cached_property
    def file_indexes(self) -> FileIndexes:
        changes = signal_path(self.config.database_url, self.config.cluster_id)
        return FileIndexes(changes.with_name(changes.name.removesuffix(".changes") + ".file-index"))

    @staticmethod
    def _restricted(ctx: Context, row: Any) -> bool:
        """Under a residency policy: its own, or one of a project above it."""
        return bool(row.residency) or row.owner_uuid in ctx.restricted_projects

    def guard_read(self, ctx: Context, row: Any) -> None:
        if ctx.outside and self._restricted(ctx, row):
            raise refuse(self.config.cluster_id, f"collection {row.uuid}", ctx.reader)

    def unfilterable_for(self, ctx: Context) -> frozenset[str]:
        # readers outside see restricted collections without their manifests (below): `manifest_text
        # like '%<guess>%'` would read the file names and blocks back
        return self.unfilterable | {"manifest_text"} if ctx.outside else self.unfilterable

    def redact_listing(self, ctx: Context, rows: list[Any], items: list[Record]) -> None:
        if not ctx.outside:
            return
        for row, item in zip(rows, items, strict=True):
            if self._restricted(ctx, row):  # metadata yes, manifests never
                for key in MANIFEST_FIELDS:
                    item.pop(key, None)

    def render_extra(self, out: Record, row: Any, caller: Caller | None, wanted: set[str] | None,
                     listing: bool) -> None:
        if wanted is not None or not listing:
            out["unsigned_manifest_text"] = row.manifest_text
            if wanted is None or "manifest_text" in wanted:
                out["manifest_text"] = self._signed(row, caller) if caller else row.manifest_text
        out["current_version_uuid"] = row.uuid
        out["storage_classes_confirmed"] = []
        out["replication_confirmed"] = None

    def _signed(self, row: Any, caller: Caller) -> str:
        signing = self.config.collections
        if not signing.blob_signing or row.is_trashed:
            return row.manifest_text
        return sign_manifest(row.manifest_text, caller.token, self._expiry(row), signing.blob_signing_ttl,
                             signing.blob_signing_key.encode())

    def _expiry(self, row: Any) -> int:
        expiry = int(time.time()) + self.config.collections.blob_signing_ttl
        if row.trash_at is not None:
            expiry = min(expiry, int(aware(row.trash_at).timestamp()))
        return expiry

    def _signer(self, row: Any, caller: Caller) -> Signer | None:
        """Each locator signed as `_signed` signs the manifest (None: blocks are not signed here)."""
        signing = self.config.collections
        if not signing.blob_signing:
            return None
        expiry, ttl, key, token = self._expiry(row), signing.blob_signing_ttl, signing.blob_signing_key.encode(), \
            caller.token
        return lambda locator: sign_locator(locator, token, expiry, ttl, key)
