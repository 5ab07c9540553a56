"""What each cluster of the federation says to this user, asked once and remembered: which of them
hold a readable copy of a collection (by PDH) and under what residency, its blocks; whether a
project exists there and is writable; whether the cluster answers at all; its keepstores' counters.

Every cluster is asked with the user's own token (salted for it), so the plan knows only what the
user may know: a collection she cannot read is simply absent. Questions go to all clusters at
once, in batches (one listing per cluster per 150 PDHs, not one request per record), so a plan of
a thousand records costs a handful of round trips.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import urllib3

from ..errors import ArchipelagoError
from ..formats.manifest import parse
from ..keepstore.metrics import FETCHED
from ..rpc import Transport
from ..sdk.client import ApiClient
from ..sdk.copy import token_for_cluster

BATCH = 150  # PDHs per listing (the filter travels in a POST body: no URL length limit applies)
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

    def blocks(self) -> dict[str, int]:
        """md5 -> size of every block (what reading all of it fetches at most)."""
        self._parse()
        return self._blocks or {}

    def blocks_of(self, path: str) -> dict[str, int]:
        """md5 -> size of the blocks under one file (what reading it whole fetches)."""
        self._parse()
        sizes = self.blocks()
        return {md5: sizes[md5] for md5 in (self._files or {}).get(path.strip("/"), [])}

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

    # ---------------------------------------------------------------- clusters
    def client(self, cluster: str) -> ApiClient:
        """The user at `cluster`. The first call introduces her there (who she is), alone: a
        cluster that meets a visitor in several requests at once may record her twice."""
        with self._lock:
            lock = self._introducing.setdefault(cluster, threading.Lock())
        with lock:
            if cluster not in self._clients:
                remote = self.home.config().get("RemoteClusters", {})[cluster]
                client = ApiClient(f"{remote.get('Scheme', 'https')}://{remote['Host']}",
                                   token_for_cluster(self.home, cluster), insecure=bool(remote.get("Insecure")),
                                   timeout=TIMEOUT,
                                   transport=self._transport_for(cluster) if self._transport_for else None)
                try:
                    client.users.current()
                    with self._lock:
                        self._answered.add(cluster)
                except (ArchipelagoError, ConnectionError) as exc:
                    with self._lock:
                        self.unreachable.setdefault(cluster, str(exc))
                self._clients[cluster] = client
            return self._clients[cluster]

    def known(self, cluster: str) -> bool:
        return cluster in self.clusters

    def reach(self, clusters: set[str]) -> None:
        """Introduce the user to each of `clusters` (at once): those that do not answer are unreachable."""
        todo = sorted(c for c in clusters if self.known(c) and c not in self._clients)
        if todo:
            with ThreadPoolExecutor(len(todo)) as pool:
                list(pool.map(self.client, todo))

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
        with ThreadPoolExecutor(min(16, len(batches))) as pool:
            for cluster, found in zip((c for c, _ in batches), pool.map(self._list, batches), strict=True):
                for record in found:
                    self._remember(cluster, record)

    def _list(self, batch: tuple[str, list[str]]) -> list[dict[str, Any]]:
        cluster, pdhs = batch
        body = {"_method": "GET", "filters": json.dumps([["portable_data_hash", "in", pdhs]]),
                "select": json.dumps(SELECT), "limit": 1000, "count": "none"}
        try:
            found = list(self.client(cluster).request("POST", "collections", body=body)["items"])
            with self._lock:
                self._answered.add(cluster)
            return found
        except (ArchipelagoError, ConnectionError, KeyError) as exc:
            with self._lock:
                self.unreachable.setdefault(cluster, str(exc))
            return []

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
            record = self.client(cluster).request("GET", f"{kind}/{uuid}")
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
            return str(self.client(cluster).users.current()["uuid"])
        except ArchipelagoError:
            return None

    # ---------------------------------------------------------------- keepstores
    def keep_counters(self) -> dict[str, dict[str, int]] | None:
        """Bytes each cluster's keepstores have fetched from each other cluster so far (their
        /metrics), or None if some cluster's keepstores cannot be read."""
        def one(cluster: str) -> dict[str, int] | None:
            try:
                client = self.client(cluster)
                services = client.request("GET", "keep_services/accessible")["items"]
                http = urllib3.PoolManager(cert_reqs="CERT_NONE" if client.insecure else "CERT_REQUIRED")
                totals: dict[str, int] = {}
                for service in services:
                    if str(service.get("service_type", "disk")).startswith("gateway"):
                        continue
                    scheme = "https" if service.get("service_ssl_flag") else "http"
                    url = f"{scheme}://{service['service_host']}:{service['service_port']}/metrics"
                    text = http.request("GET", url, timeout=5.0, retries=False).data.decode()
                    prefix = f'{FETCHED}{{cluster="'
                    for line in text.splitlines():
                        if line.startswith(prefix):
                            source = line[len(prefix):].split('"')[0]
                            totals[source] = totals.get(source, 0) + int(line.rsplit(" ", 1)[1])
                return totals
            except (ArchipelagoError, urllib3.exceptions.HTTPError, KeyError, ValueError):
                return None

        with ThreadPoolExecutor(len(self.clusters)) as pool:
            answers = dict(zip(self.clusters, pool.map(one, self.clusters), strict=True))
        if any(a is None for a in answers.values()):
            return None
        return {cluster: counts or {} for cluster, counts in answers.items()}
