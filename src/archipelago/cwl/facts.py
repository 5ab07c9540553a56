"""What each cluster of the federation says to this user, asked once and remembered: which of them
hold a readable copy of a collection (by PDH) and under what residency, its blocks; whether a
project exists there and is writable; whether the cluster answers at all; its keepstores' counters.

Every cluster is asked with the user's own token (salted for it), so the plan knows only what the
user may know: a collection she cannot read is simply absent. Questions go to all clusters at
once, in batches (one listing per cluster per 150 PDHs, not one request per record), so a plan of
a thousand records costs a handful of round trips.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import ArchipelagoError
from ..formats.manifest import parse
from ..keep.client import KeepClient
from ..keep.services import KeepService
from ..keepstore.metrics import FETCHED, counters
from ..rpc import Transport, Unreachable
from ..sdk.client import ApiClient
from ..sdk.copy import token_for_cluster

T = TypeVar("T")
BATCH = 1000  # PDHs per listing (in a POST body: no URL length limit; at most a page of answers)
TIMEOUT = 15.0  # a cluster that does not answer within this is unreachable for the plan
SELECT = ["uuid", "portable_data_hash", "name", "owner_uuid", "residency", "file_size_total", "manifest_text"]


@dataclass
class Held:
    """A collection as one cluster holds it for this user."""

    cluster: str
    pdh: str
    uuid: str
    name: str
    size: int
    restricted: bool  # stays on its cluster: only steps running there may read it
    manifest_text: str | None  # None where residency hides it from this user

    _blocks: dict[str, int] | None = field(default=None, repr=False)
    _files: dict[str, list[str]] | None = field(default=None, repr=False)
    _sizes: dict[str, int] = field(default_factory=dict, repr=False)

    def blocks(self) -> dict[str, int]:
        """md5 -> size of every block (what reading all of it fetches at most)."""
        self._parse()
        return self._blocks or {}

    def blocks_of(self, path: str) -> dict[str, int]:
        """md5 -> size of the blocks under one file (what reading it whole fetches)."""
        self._parse()
        sizes = self.blocks()
        return {md5: sizes[md5] for md5 in (self._files or {}).get(path.strip("/"), [])}

    def file_size(self, path: str) -> int | None:
        """The size of one file (None: not a file here, or the manifest is hidden)."""
        self._parse()
        return self._sizes.get(path.strip("/"))

    def has(self, path: str) -> bool | None:
        """Whether the collection holds this file or directory (None: its manifest is hidden)."""
        if self.manifest_text is None:
            return None
        self._parse()
        path = path.strip("/")
        return not path or any(name == path or name.startswith(path + "/") for name in self._files or {})

    def _parse(self) -> None:
        if self._blocks is not None or self.manifest_text is None:
            return
        blocks: dict[str, int] = {}
        files: dict[str, list[str]] = {}
        for dirname, entries in parse(self.manifest_text).tree().items():
            if not entries and dirname != ".":
                files.setdefault(dirname[2:], [])  # an empty directory is something a step may be given
            for name, segments in entries.items():
                path = f"{dirname}/{name}"[2:]
                files.setdefault(path, [])  # an empty file has no segments
                self._sizes[path] = sum(length for _, _, length in segments)
                for locator, _, _ in segments:
                    md5, size = locator[:32], int(locator.split("+")[1])
                    blocks[md5] = size
                    files.setdefault(path, []).append(md5)
        self._blocks, self._files = blocks, files


@dataclass
class Project:
    uuid: str
    cluster: str
    problem: str | None  # None: exists there and this user may write into it


class Facts:
    """The federation as this user sees it, asked lazily and remembered for the run."""

    def __init__(self, home: ApiClient, transport_for: Callable[[str], Transport] | None = None):
        """`transport_for(cluster)`: how to reach each cluster's API (default: HTTPS, as configured)."""
        self.home, self._transport_for = home, transport_for
        config = home.config()
        self.home_id: str = config["ClusterID"]
        self.clusters: list[str] = sorted({self.home_id, *config.get("RemoteClusters", {})})
        self._clients: dict[str, ApiClient] = {self.home_id: home}
        self._held: dict[str, dict[str, Held]] = {}  # PDH -> cluster -> its copy there
        self._projects: dict[tuple[str, str], Project] = {}
        self._home_restricted: dict[str, bool] = {}  # home project UUID -> under a residency policy
        self.unreachable: dict[str, str] = {}  # cluster -> why it could not be asked
        self._answered: set[str] = {self.home_id}  # clusters that have answered this user
        self._introducing: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._policy_lock = threading.Lock()
        self._metrics: dict[str, KeepClient] = {}  # cluster -> a client of its keepstores (for /metrics)

    # ---------------------------------------------------------------- clusters
    def client(self, cluster: str) -> ApiClient:
        """The user at `cluster` (her token salted for it)."""
        with self._lock:
            if cluster not in self._clients:
                remote = self.home.config().get("RemoteClusters", {})[cluster]
                self._clients[cluster] = ApiClient(
                    f"{remote.get('Scheme', 'https')}://{remote['Host']}", token_for_cluster(self.home, cluster),
                    insecure=bool(remote.get("Insecure")), timeout=TIMEOUT,
                    transport=self._transport_for(cluster) if self._transport_for else None)
            return self._clients[cluster]

    def ask(self, cluster: str, question: Callable[[ApiClient], T]) -> T:
        """`question` put to the user's client at `cluster`. The first question to a cluster is put
        alone (the others wait for its answer): a cluster meeting a visitor for the first time in
        several requests at once may try to record her twice. A cluster that cannot be reached is
        remembered as such (and the error raised)."""
        with self._lock:
            first = self._introducing.setdefault(cluster, threading.Lock()) if cluster not in self._answered else None
        try:
            if first is None:
                return question(self.client(cluster))
            with first:
                answer = question(self.client(cluster))
                with self._lock:
                    self._answered.add(cluster)
                return answer
        except (Unreachable, ConnectionError) as exc:
            with self._lock:
                self.unreachable.setdefault(cluster, str(exc))
            raise

    def known(self, cluster: str) -> bool:
        return cluster in self.clusters

    def reach(self, clusters: set[str]) -> None:
        """Ask each of `clusters` not heard from yet who the user is there (at once): those that do
        not answer are unreachable."""
        todo = sorted(c for c in clusters if self.known(c) and c not in self._answered and c not in self.unreachable)

        def hello(cluster: str) -> None:
            with contextlib.suppress(ArchipelagoError, ConnectionError):
                self.ask(cluster, lambda client: client.users.current())

        if todo:
            with ThreadPoolExecutor(len(todo)) as pool:
                list(pool.map(hello, todo))

    # ---------------------------------------------------------------- collections
    def survey(self, pdhs: set[str]) -> None:
        """Ask every cluster at once which of `pdhs` it holds (those not asked before)."""
        with self._lock:
            wanted = sorted(p for p in pdhs if p not in self._held)
            for pdh in wanted:
                self._held[pdh] = {}
        if not wanted:
            return
        batches = [(c, wanted[n:n + BATCH]) for c in self.clusters if c not in self.unreachable
                   for n in range(0, len(wanted), BATCH)]
        with ThreadPoolExecutor(min(8, len(batches))) as pool:
            list(pool.map(self._list, batches))

    def _list(self, batch: tuple[str, list[str]]) -> None:
        cluster, pdhs = batch
        found: list[dict[str, Any]] = []
        while True:  # page by page, should the cluster answer fewer than were asked for at once
            body = {"_method": "GET", "filters": json.dumps([["portable_data_hash", "in", pdhs]]),
                    "select": json.dumps(SELECT), "limit": len(pdhs), "offset": len(found), "count": "none",
                    "order": json.dumps(["uuid asc"])}
            def listing(client: ApiClient, body: dict[str, Any] = body) -> dict[str, Any]:
                return client.request("POST", "collections", body=body)

            try:
                page = self.ask(cluster, listing)
            except (ArchipelagoError, ConnectionError) as exc:
                with self._lock:
                    self.unreachable.setdefault(cluster, str(exc))
                return
            found += page["items"]
            if not page["items"] or len(page["items"]) < int(page.get("limit") or 0):
                break
        for record in found:
            self._remember(cluster, record)

    def _remember(self, cluster: str, record: dict[str, Any]) -> None:
        manifest = record.get("manifest_text")
        restricted = manifest is None or bool(record.get("residency")) or \
            (cluster == self.home_id and self._under_policy(str(record.get("owner_uuid"))))
        held = Held(cluster, record["portable_data_hash"], record["uuid"], record.get("name") or "",
                    int(record.get("file_size_total") or 0), restricted, manifest)
        with self._lock:
            self._held.setdefault(held.pdh, {}).setdefault(cluster, held)

    def _under_policy(self, owner: str) -> bool:
        """Whether a home project (or one above it) keeps its data at home. Elsewhere the cluster
        says so itself: it hides the manifests of such collections from visitors."""
        with self._policy_lock:
            chain: list[str] = []
            node: str | None = owner
            while node and "-j7d0g-" in node and node not in self._home_restricted and len(chain) < 64:
                chain.append(node)
                try:
                    group = self.home.groups.get(node, select=["uuid", "owner_uuid", "residency"])
                except ArchipelagoError:
                    break
                if group.get("residency"):
                    node = None
                    for uuid in chain:
                        self._home_restricted[uuid] = True
                    return True
                node = group.get("owner_uuid")
            answer = self._home_restricted.get(node or "", False)
            for uuid in chain:
                self._home_restricted[uuid] = answer
            return answer

    def learn(self, cluster: str, record: dict[str, Any]) -> None:
        """A collection the run made (a step's output), known without asking anyone."""
        with self._lock:
            self._held.setdefault(record["portable_data_hash"], {})
        self._remember(cluster, {**record, "residency": None, "owner_uuid": ""})

    def holders(self, pdh: str) -> dict[str, Held]:
        with self._lock:
            return dict(self._held.get(pdh, {}))

    # ---------------------------------------------------------------- projects
    def check_projects(self, wanted: set[tuple[str, str]]) -> None:
        """Ask at once about each (cluster, project) not asked before."""
        todo = sorted(w for w in wanted if w not in self._projects)
        if todo:
            with ThreadPoolExecutor(min(8, len(todo))) as pool:
                for project in pool.map(self._project, todo):
                    self._projects[(project.cluster, project.uuid)] = project

    def project(self, cluster: str, uuid: str) -> Project:
        self.check_projects({(cluster, uuid)})
        return self._projects[(cluster, uuid)]

    def _project(self, key: tuple[str, str]) -> Project:
        cluster, uuid = key
        if uuid[:5] != cluster:
            return Project(uuid, cluster, f"project {uuid} is not on cluster {cluster}")
        missing = Project(uuid, cluster, f"project {uuid}: missing or not readable")
        kind = "users" if "-tpzed-" in uuid else "groups" if "-j7d0g-" in uuid else None
        if kind is None:
            return Project(uuid, cluster, f"project {uuid} is neither a project nor a user")
        try:
            record = self.ask(cluster, lambda client: client.request("GET", f"{kind}/{uuid}"))
        except ArchipelagoError as exc:
            if exc.status in (401, 403, 404, 422):
                return missing
            return Project(uuid, cluster, f"project {uuid}: cluster {cluster} cannot be reached ({exc})")
        if kind == "groups" and record.get("group_class") != "project":
            return Project(uuid, cluster, f"{uuid} is a {record.get('group_class')} group, not a project")
        if record.get("can_write") is False:
            return Project(uuid, cluster, f"project {uuid} on {cluster} is not writable by you")
        if "can_write" not in record and kind == "users" and record.get("uuid") != self._me(cluster):
            return Project(uuid, cluster, f"project {uuid} is another user's home project")
        return Project(uuid, cluster, None)

    def _me(self, cluster: str) -> str | None:
        try:
            return str(self.ask(cluster, lambda client: client.users.current())["uuid"])
        except ArchipelagoError:
            return None

    # ---------------------------------------------------------------- keepstores
    def keep_counters(self) -> dict[str, dict[str, int]] | None:
        """Bytes each cluster's keepstores have fetched from each other cluster so far (their
        /metrics, unauthenticated as in Arvados), or None if some cluster's cannot be read. The
        keepstores are asked for once; their counters each time."""
        def one(cluster: str) -> dict[str, int] | None:
            try:
                if cluster not in self._metrics:
                    items = self.ask(cluster, lambda c: c.request("GET", "keep_services/accessible"))["items"]
                    disks = [s for s in map(KeepService.from_record, items) if not s.is_gateway]
                    self._metrics[cluster] = KeepClient(disks, cache=None, retries=0, connect_timeout=5.0,
                                                        read_timeout=5.0, insecure=self.client(cluster).insecure)
                keep = self._metrics[cluster]
                totals: dict[str, int] = {}
                for service in keep.services:
                    for source, n in counters(keep.metrics(service), FETCHED).items():
                        totals[source] = totals.get(source, 0) + n
                return totals
            except (ArchipelagoError, ConnectionError, KeyError, ValueError):
                return None

        with ThreadPoolExecutor(len(self.clusters)) as pool:
            answers = dict(zip(self.clusters, pool.map(one, self.clusters), strict=True))
        if any(a is None for a in answers.values()):
            return None
        return {cluster: counts or {} for cluster, counts in answers.items()}
