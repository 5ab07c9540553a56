"""The federated half of `make demo`: three clusters, a private cohort on each, one researcher.

Each cluster's admin keeps a cohort in a project whose residency policy says it stays on that
cluster, and shares it with a researcher of z1111. z2222 also publishes a reference panel. The
researcher reads the panel through her home cluster (cold, then warm), is refused the cohorts
from outside their clusters, and copies the panel to z3333. The keepstores' counters then show
which bytes crossed which boundary: the panel's, once; no cohort byte.

Running analyses next to each cohort (compute, CWL with ClusterTarget) comes with later issues.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from ..formats.tokens import salt_token
from ..keepstore.metrics import fetched_from_clusters
from ..rpc import ApiRequestError
from ..sdk.client import ApiClient
from ..sdk.collection import Collection
from ..sdk.copy import FederationCopy
from .federation import FederationMember

PANEL_BYTES = 8 << 20
COHORT_BYTES = 2 << 20


@dataclass
class FederationReport:
    clusters: dict[str, str]  # cluster id -> API URL
    panel_uuid: str
    panel_bytes: int
    cold_seconds: float
    warm_seconds: float
    refusals: dict[str, str]  # cluster id -> the refusal the researcher got from outside
    copy_uuid: str
    copy_bytes_sent: int
    copy_again_bytes_sent: int
    crossed: dict[str, int]  # "from→to" -> bytes fetched across that boundary

    @property
    def cohort_bytes_crossed(self) -> int:
        """Everything that crossed, less the panel read once: what leaked of the cohorts."""
        return sum(self.crossed.values()) - self.panel_bytes

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "cohort_bytes_crossed": self.cohort_bytes_crossed}

    def text(self) -> str:
        crossed = ", ".join(f"{edge} {n / 1e6:.1f} MB" for edge, n in sorted(self.crossed.items())) or "nothing"
        refused = "\n".join(f"refused        {cid} cohort from outside: {why}" for cid, why in self.refusals.items())
        return (
            "federation     " + ", ".join(f"{cid} {url}" for cid, url in self.clusters.items()) + "\n"
            f"cohorts        each cluster holds one, in a project that stays on its cluster\n"
            f"remote read    panel {self.panel_uuid} ({self.panel_bytes / 1e6:.1f} MB, held on z2222) read at "
            f"z1111: cold {self.cold_seconds:.2f} s, warm {self.warm_seconds:.2f} s\n"
            f"{refused}\n"
            f"copy           panel to z3333 as {self.copy_uuid}: {self.copy_bytes_sent / 1e6:.1f} MB sent; "
            f"again: {self.copy_again_bytes_sent} bytes\n"
            f"crossed        {crossed}\n"
            f"cohort bytes that left their cluster: {self.cohort_bytes_crossed}"
        )


def _user(admin: ApiClient, name: str) -> ApiClient:
    user = admin.users.create({"email": f"{name}@example.org", "username": name, "first_name": name})
    row = admin.api_client_authorizations.create({"owner_uuid": user["uuid"]})
    return ApiClient(admin.base, f"v2/{row['uuid']}/{row['api_token']}", insecure=True)


def _read_all(client: ApiClient, uuid: str) -> float:
    started = time.perf_counter()
    collection = Collection(ApiClient(client.base, client.token, insecure=True), uuid)  # no client cache
    for path, _ in collection.files():
        collection.read(path)
    return time.perf_counter() - started


def run_federation(members: list[FederationMember], keep_urls: dict[str, str]) -> FederationReport:
    admins = {m.cluster_id: ApiClient(m.api_url, m.admin_token, insecure=True) for m in members}
    home_id = members[0].cluster_id
    researcher = _user(admins[home_id], "researcher")
    visiting = {cid: researcher if cid == home_id else
                ApiClient(admin.base, salt_token(researcher.token, cid), insecure=True)
                for cid, admin in admins.items()}
    researcher_uuid = researcher.users.current()["uuid"]
    cohorts = {}
    for cid, admin in admins.items():
        visiting[cid].users.current()  # the researcher becomes known there (mirrored from her home)
        project = admin.groups.create({"name": f"cohort {cid}", "group_class": "project", "residency": "cluster"})
        cohort = Collection(admin)
        cohort.write("cohort.csv", b"id,genotype\n" + os.urandom(COHORT_BYTES))
        cohorts[cid] = cohort.save_new(f"cohort {cid}", owner_uuid=project["uuid"])["uuid"]
        admin.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": researcher_uuid,
                            "head_uuid": project["uuid"]})
    panel = Collection(admins["z2222"])
    panel.write("panel.vcf", os.urandom(PANEL_BYTES))
    panel_uuid = panel.save_new("reference panel")["uuid"]
    admins["z2222"].links.create({"link_class": "permission", "name": "can_read", "tail_uuid": researcher_uuid,
                                  "head_uuid": panel_uuid})
    before = {cid: fetched_from_clusters(url) for cid, url in keep_urls.items()}
    cold = _read_all(researcher, panel_uuid)
    warm = _read_all(researcher, panel_uuid)
    refusals = {}
    for cid in admins:
        if cid == home_id:
            continue
        try:
            researcher.collections.get(cohorts[cid])
            refusals[cid] = "NOT REFUSED"
        except ApiRequestError as exc:
            refusals[cid] = f"{exc.status} {exc.message.split(': ', 1)[-1]}"
    copier = FederationCopy(researcher, "z3333")
    first = copier.copy(panel_uuid)
    again = FederationCopy(researcher, "z3333").copy(panel_uuid)
    after = {cid: fetched_from_clusters(url) for cid, url in keep_urls.items()}
    crossed = {f"{source}→{cid}": n - before[cid].get(source, 0)
               for cid, counters in after.items() for source, n in counters.items()
               if n - before[cid].get(source, 0)}
    return FederationReport(
        clusters={m.cluster_id: m.api_url for m in members}, panel_uuid=panel_uuid, panel_bytes=PANEL_BYTES,
        cold_seconds=cold, warm_seconds=warm, refusals=refusals, copy_uuid=first.top.uuid,
        copy_bytes_sent=first.bytes_sent, copy_again_bytes_sent=again.bytes_sent, crossed=crossed,
    )
