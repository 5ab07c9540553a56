"""Copy collections, workflows and whole projects to another cluster of the federation (`archi copy`).

The caller's token, salted for the destination, identifies them there. Nothing is sent twice:

- a collection whose content (PDH) is already readable at the destination is not re-sent; if the
  target project lacks it, a record pointing at the same manifest is made there (no bytes move);
- a block the caller can already read at the destination — in any collection of the target
  project, or copied earlier in this run — is reused by its destination signature. Readability is
  the proof of possession: the destination never answers "do you have md5 X?" to anyone;
- a workflow carries its dependencies: every `keep:<PDH>` (and `keep:<collection UUID>`) its
  definition names is copied first, and UUID references are rewritten to the copies.

Blocks are read through the caller's home cluster (which fetches `+R` blocks from their cluster
itself) and stored at the destination, several at a time.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..formats.locator import Locator
from ..formats.manifest import parse, replace_locators
from ..formats.tokens import salt_token
from ..ids import INFIX, PDH_RE, UUID_RE
from ..rpc import ApiRequestError
from .client import ApiClient

Progress = Callable[[int], None]
KEEP_REFERENCE = re.compile(r"keep:([0-9a-f]{32}\+[0-9]+|[a-z0-9]{5}-4zz18-[a-z0-9]{15})")
# what a copy needs of a source collection (sizing the copy reads them, the copy reuses them)
COLLECTION_FIELDS = ["uuid", "name", "portable_data_hash", "manifest_text", "properties", "description"]
PARALLEL_BLOCKS = 4


def client_for_cluster(client: ApiClient, cluster_id: str) -> ApiClient:
    """The caller at another cluster of the federation (or at this one: results come home too)."""
    config = client.config()
    if cluster_id == config.get("ClusterID"):
        return ApiClient(client.base, client.token, insecure=client.insecure)
    remotes = config.get("RemoteClusters", {})
    if cluster_id not in remotes:
        raise ApiRequestError(422, f"cluster {cluster_id} is not federated with {client.base}")
    remote = remotes[cluster_id]
    return ApiClient(f"{remote.get('Scheme', 'https')}://{remote['Host']}", token_for_cluster(client, cluster_id),
                     insecure=bool(remote.get("Insecure")))


def token_for_cluster(client: ApiClient, cluster_id: str) -> str:
    """The token to present at another cluster: salted for it, unless the federation has a login
    cluster that issued this token (then the same token is good everywhere, as in Arvados)."""
    login = client.config().get("Login", {}).get("LoginCluster")
    parts = client.token.split("/")
    if login and len(parts) >= 3 and parts[1].startswith(login):
        return client.token
    return salt_token(client.token, cluster_id)


def kind_of(identifier: str) -> str:
    """"collection", "project" or "workflow", from a PDH or a UUID's type infix."""
    if PDH_RE.fullmatch(identifier):
        return "collection"
    if UUID_RE.fullmatch(identifier):
        infix = identifier[6:11]
        for kind, name in (("collection", "Collection"), ("project", "Group"), ("workflow", "Workflow")):
            if infix == INFIX[name]:
                return kind
    raise ApiRequestError(400, f"{identifier!r} is not a collection, project or workflow UUID, nor a PDH")


@dataclass
class Copied:
    """One object handled by a copy: its source, its destination record, whether anything was made."""

    kind: str
    source: str
    uuid: str
    created: bool
    portable_data_hash: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"kind": self.kind, "source": self.source, "uuid": self.uuid, "created": self.created}
        if self.portable_data_hash:
            out["portable_data_hash"] = self.portable_data_hash
        return out


@dataclass
class CopyReport:
    objects: list[Copied] = field(default_factory=list)
    bytes_sent: int = 0
    blocks_sent: int = 0
    blocks_reused: int = 0

    @property
    def top(self) -> Copied:
        return self.objects[-1]  # the object asked for is finished last

    def as_dict(self) -> dict[str, Any]:
        return {**self.top.as_dict(), "copied": any(o.created for o in self.objects),
                "objects": [o.as_dict() for o in self.objects], "bytes_sent": self.bytes_sent,
                "blocks_sent": self.blocks_sent, "blocks_reused": self.blocks_reused}


class FederationCopy:
    """One `archi copy` run from the caller's home cluster to `cluster_id`."""

    def __init__(self, client: ApiClient, cluster_id: str, progress: Progress | None = None):
        self.source, self.cluster_id = client, cluster_id
        self.dest = client_for_cluster(client, cluster_id)
        self.progress = progress or (lambda n: None)
        self.report = CopyReport()
        self._known: dict[str, str] = {}  # md5 -> a locator signed by the destination for us
        self._scanned: set[str] = set()  # destination projects whose blocks are in _known
        self._home: str | None = None
        self._ticked: set[str] = set()
        self._records: dict[str, dict[str, Any]] = {}  # source collections already fetched, by identifier
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ planning
    def size(self, identifier: str) -> int:
        """Bytes of the unique blocks the copy of `identifier` reads (for a progress bar)."""
        self._read_where_it_lives(identifier)
        blocks: dict[str, int] = {}
        for manifest_text in self._manifests(identifier):
            for stream in parse(manifest_text).streams:
                for locator in stream.locators:
                    loc = Locator.parse(locator)
                    blocks[loc.md5] = loc.size or 0
        return sum(blocks.values())

    def _manifests(self, identifier: str) -> Iterator[str]:
        kind = kind_of(identifier)
        if kind == "collection":
            yield self._source_collection(identifier)["manifest_text"]
        elif kind == "workflow":
            for reference in self._references(self.source.workflows.get(identifier)):
                yield from self._manifests(reference)
        else:
            for collection in self._children(self.source, "collections", identifier, COLLECTION_FIELDS):
                self._records[collection["uuid"]] = collection
                yield collection["manifest_text"]
            for workflow in self._children(self.source, "workflows", identifier, ["uuid", "definition"]):
                for reference in self._references(workflow):
                    yield from self._manifests(reference)
            for project in self._subprojects(self.source, identifier):
                yield from self._manifests(project["uuid"])

    # ------------------------------------------------------------------ copying
    def copy(self, identifier: str, project: str | None = None) -> CopyReport:
        kind = kind_of(identifier)
        self._read_where_it_lives(identifier)
        target = project or self._dest_home()
        if kind == "collection":
            self.collection(identifier, target)
        elif kind == "workflow":
            self.workflow(identifier, target)
        else:
            self.project(identifier, target)
        return self.report

    def collection(self, identifier: str, project: str) -> Copied:
        record = self._source_collection(identifier)
        pdh = record["portable_data_hash"]
        in_project = self.dest.collections.list(
            [["owner_uuid", "=", project], ["portable_data_hash", "=", pdh]], limit=1, count="none")["items"]
        if in_project:
            self._tick(record["manifest_text"])
            return self._done("collection", identifier, in_project[0], created=False)
        manifest_text = self._manifest_at_dest(pdh) or self._send_blocks(record["manifest_text"], project)
        self._tick(record["manifest_text"])
        attrs = {"manifest_text": manifest_text, "name": record.get("name") or pdh, "owner_uuid": project,
                 "properties": record.get("properties") or {}, "description": record.get("description")}
        created = self.dest.collections.create(attrs, ensure_unique_name=True)
        self._learn(created["manifest_text"])
        return self._done("collection", identifier, created, created=True)

    def workflow(self, identifier: str, project: str) -> Copied:
        record = self.source.workflows.get(identifier)
        definition = record.get("definition") or ""
        for reference in sorted(set(self._references(record))):
            copy = self.collection(reference, project)
            if UUID_RE.fullmatch(reference):  # PDH references stay true wherever the content is
                definition = definition.replace(f"keep:{reference}", f"keep:{copy.uuid}")
        same = [w for w in self._children(self.dest, "workflows", project, ["uuid", "name", "definition"])
                if w.get("name") == record.get("name") and w.get("definition") == definition]
        if same:
            return self._done("workflow", identifier, same[0], created=False)
        created = self.dest.workflows.create({"name": record.get("name"), "description": record.get("description"),
                                              "definition": definition, "owner_uuid": project})
        return self._done("workflow", identifier, created, created=True)

    def project(self, identifier: str, parent: str) -> Copied:
        """The project, at the same name under `parent` (reused if there), with everything in it."""
        record = self.source.groups.get(identifier)
        existing = [g for g in self._subprojects(self.dest, parent) if g["name"] == record["name"]]
        if existing:
            target, created = existing[0], False
        else:
            target = self.dest.groups.create({"name": record["name"], "group_class": "project",
                                              "description": record.get("description"), "owner_uuid": parent,
                                              "properties": record.get("properties") or {}})
            created = True
        for collection in self._children(self.source, "collections", identifier, ["uuid"]):
            self.collection(collection["uuid"], target["uuid"])
        for workflow in self._children(self.source, "workflows", identifier, ["uuid"]):
            self.workflow(workflow["uuid"], target["uuid"])
        for sub in self._subprojects(self.source, identifier):
            self.project(sub["uuid"], target["uuid"])
        return self._done("project", identifier, target, created=created)

    # ------------------------------------------------------------------ blocks
    def _manifest_at_dest(self, pdh: str) -> str | None:
        """The destination's own signed manifest of this content, if the caller can read it there.
        (A list, not a get by PDH: that would look across the federation and find the source.)"""
        found = self.dest.collections.list([["portable_data_hash", "=", pdh]], limit=1, count="none",
                                           select=["uuid", "manifest_text"])["items"]
        manifest_text = found[0].get("manifest_text") if found else None
        if manifest_text:
            self._learn(manifest_text)
        return manifest_text

    def _send_blocks(self, manifest_text: str, project: str) -> str:
        """The manifest with every block stored at the destination, sending only what is not there.
        The source's own text with the destination's locators, as arv-copy does: re-rendering it would
        change the PDH of a manifest not in today's normal form (another writer's, or an older one's)."""
        self._scan(project)
        locators = {token: Locator.parse(token) for stream in parse(manifest_text).streams for token in stream.locators}
        wanted = {loc.md5: token for token, loc in locators.items() if loc.size}  # a zero-length block: nothing to send
        missing = [loc for md5, loc in wanted.items() if md5 not in self._known]
        self.report.blocks_reused += len(wanted) - len(missing)
        source_keep, dest_keep = self.source.keep(cache=None), self.dest.keep(cache=None)

        def send(locator: str) -> None:
            md5, data = Locator.parse(locator).md5, source_keep.get(locator)
            signed = dest_keep.put(data)
            with self._lock:  # several blocks go at once
                self._known[md5] = signed
                self.report.bytes_sent += len(data)
                self.report.blocks_sent += 1
            self._tick_block(md5, len(data))

        with ThreadPoolExecutor(PARALLEL_BLOCKS) as pool:
            list(pool.map(send, missing))  # list(): re-raises the first failure
        return replace_locators(manifest_text, {token: self._known[loc.md5] if loc.size else loc.stripped
                                                for token, loc in locators.items()})

    def _scan(self, project: str) -> None:
        """Learn the blocks of the collections the caller can read in a destination project."""
        if project in self._scanned:
            return
        self._scanned.add(project)
        for collection in self._children(self.dest, "collections", project, ["uuid", "manifest_text"]):
            self._learn(collection.get("manifest_text") or "")  # absent where residency withholds it

    def _learn(self, manifest_text: str) -> None:
        for stream in parse(manifest_text).streams if manifest_text else ():
            for locator in stream.locators:
                if "+A" in locator:
                    self._known.setdefault(Locator.parse(locator).md5, locator)

    # ------------------------------------------------------------------ helpers
    def _tick(self, manifest_text: str) -> None:
        for stream in parse(manifest_text).streams:
            for locator in stream.locators:
                loc = Locator.parse(locator)
                self._tick_block(loc.md5, loc.size or 0)

    def _tick_block(self, md5: str, size: int) -> None:
        """Advance the progress bar once per distinct block, sent or found at the destination."""
        with self._lock:
            if md5 in self._ticked:
                return
            self._ticked.add(md5)
        self.progress(size)

    def _done(self, kind: str, source: str, record: dict[str, Any], created: bool) -> Copied:
        copied = Copied(kind, source, record["uuid"], created, record.get("portable_data_hash"))
        self.report.objects.append(copied)
        return copied

    def _read_where_it_lives(self, identifier: str) -> None:
        """A project's contents are listed at its own cluster: a list at home only sees home rows."""
        owner = identifier[:5]
        if kind_of(identifier) == "project" and owner not in (self.cluster_id, self._source_cluster()):
            self.source = client_for_cluster(self.source, owner)

    def _source_collection(self, identifier: str) -> dict[str, Any]:
        if identifier not in self._records:
            self._records[identifier] = self.source.collections.get(identifier)
        return self._records[identifier]

    def _source_cluster(self) -> str:
        return str(self.source.config().get("ClusterID", ""))

    def _dest_home(self) -> str:
        if self._home is None:
            self._home = self.dest.users.current()["uuid"]
        return self._home

    @staticmethod
    def _references(workflow: dict[str, Any]) -> list[str]:
        return KEEP_REFERENCE.findall(workflow.get("definition") or "")

    @staticmethod
    def _children(client: ApiClient, resource: str, project: str, select: list[str]) -> Iterator[dict[str, Any]]:
        yield from getattr(client, resource).list_all([["owner_uuid", "=", project]], select=select)

    @staticmethod
    def _subprojects(client: ApiClient, project: str) -> Iterator[dict[str, Any]]:
        yield from client.groups.list_all([["owner_uuid", "=", project], ["group_class", "=", "project"]],
                                          select=["uuid", "name"])

