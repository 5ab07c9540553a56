"""FederatedBackend: chooses, per operation, between this cluster's database and its peers.

The rules (reference §7): a UUID belongs to the cluster named by its first five characters;
create goes to `cluster_id`; lists filtered only by UUIDs are split per cluster and merged; a
collection asked for by PDH is looked up here first, then on every peer at once, and the first
answer whose manifest really hashes to that PDH wins. Manifests from peers come back with
`+R<cluster>-` signatures, which this cluster's keepstore knows to fetch from that peer.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from ..db.models import kind
from ..ids import PDH_RE, UUID_RE
from ..keep.manifest import portable_data_hash
from ..keep.signing import local_to_remote
from .backend import ApiError, Caller, ListParams, NotFound, Unprocessable
from .local import LOGIN_CLUSTER_RESOURCES, LocalBackend
from .remote import RemoteBackend


class FederatedBackend:
    def __init__(self, local: LocalBackend, remotes: dict[str, RemoteBackend]):
        self.local, self.remotes = local, remotes
        self.cluster_id = local.config.cluster_id
        self._pool = ThreadPoolExecutor(max(4, len(remotes)), thread_name_prefix="federation")

    # identity and keep services are always this cluster's
    def authenticate(self, token: str, remote: str | None = None) -> Caller:
        return self.local.authenticate(token, remote)

    def known_caller(self, token: str, remote: str | None = None) -> Caller | None:
        return self.local.known_caller(token, remote)

    def this_cluster(self) -> LocalBackend:
        return self.local

    def user_current(self, caller: Caller) -> dict[str, Any]:
        return self.local.user_current(caller)

    def token_current(self, caller: Caller) -> dict[str, Any]:
        return self.local.token_current(caller)

    def keep_services(self) -> dict[str, Any]:
        return self.local.keep_services()

    # routing
    def _owner(self, uuid: str) -> LocalBackend | RemoteBackend:
        if UUID_RE.fullmatch(uuid) and uuid[:5] in self.remotes:
            return self.remotes[uuid[:5]]
        return self.local

    def _from_remote(self, cluster_id: str, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        if resource == "collections" and record.get("manifest_text"):
            record["manifest_text"] = local_to_remote(record["manifest_text"], cluster_id)
        return record

    def get(self, caller: Caller, resource: str, uuid: str, select: list[str] | None = None) -> dict[str, Any]:
        if resource == "collections" and PDH_RE.fullmatch(uuid):
            return self._collection_by_pdh(caller, uuid, select)
        backend = self._owner(uuid)
        record = backend.get(caller, resource, uuid, select)
        return record if backend is self.local else self._from_remote(uuid[:5], resource, record)

    def _collection_by_pdh(self, caller: Caller, pdh: str, select: list[str] | None) -> dict[str, Any]:
        try:
            return self.local.get(caller, "collections", pdh, select)
        except NotFound:
            pass
        wanted = None if select is None else sorted({*select, "manifest_text"})
        futures = {self._pool.submit(remote.get, caller, "collections", pdh, wanted): cluster_id
                   for cluster_id, remote in self.remotes.items()}
        misses, refusals = [], []
        for future in as_completed(futures):
            cluster_id = futures[future]
            try:
                record = future.result()
            except ApiError as exc:
                (refusals if exc.status == 403 else misses).append(f"{cluster_id}: {exc}")
                continue
            if portable_data_hash(record.get("manifest_text", "")) == pdh:  # verify, don't trust
                return self._from_remote(cluster_id, "collections", record)
            misses.append(f"{cluster_id}: answered with a manifest that does not hash to {pdh}")
        if refusals:  # it exists, and its cluster said no: say that rather than "not found"
            raise ApiError("; ".join(refusals), 403)
        raise NotFound(f"collection {pdh} not found here or on any federated cluster ({'; '.join(misses)})")

    def list(self, caller: Caller, resource: str, params: ListParams) -> dict[str, Any]:
        by_cluster = _uuids_by_cluster(params.filters)
        if by_cluster is None or set(by_cluster) <= {self.cluster_id}:
            return self.local.list(caller, resource, params)
        items: list[dict[str, Any]] = []
        for cluster_id, uuids in sorted(by_cluster.items()):
            backend = self.remotes.get(cluster_id, self.local) if cluster_id != self.cluster_id else self.local
            part = ListParams(filters=[["uuid", "in", sorted(uuids)]], order=params.order, limit=len(uuids),
                              select=params.select, count="none", include_trash=params.include_trash)
            result = backend.list(caller, resource, part)
            items += [item if backend is self.local else self._from_remote(cluster_id, resource, item)
                      for item in result["items"]]
        return {"kind": kind(resource) + "List", "items": items, "items_available": len(items), "offset": 0,
                "limit": len(items)}

    def create(self, caller: Caller, resource: str, attrs: dict[str, Any], ensure_unique_name: bool = False,
               cluster_id: str | None = None) -> dict[str, Any]:
        login = self.local.config.login.satellite_of(self.cluster_id)
        if login and resource in LOGIN_CLUSTER_RESOURCES:
            cluster_id = login  # users and tokens are issued by the login cluster alone
        if cluster_id and cluster_id != self.cluster_id:
            if cluster_id not in self.remotes:
                raise Unprocessable(f"cluster_id {cluster_id!r} is not a cluster this one federates with")
            record = self.remotes[cluster_id].create(caller, resource, attrs, ensure_unique_name)
            return self._from_remote(cluster_id, resource, record)
        return self.local.create(caller, resource, attrs, ensure_unique_name)

    def update(self, caller: Caller, resource: str, uuid: str, attrs: dict[str, Any]) -> dict[str, Any]:
        return self._owner(uuid).update(caller, resource, uuid, attrs)

    def delete(self, caller: Caller, resource: str, uuid: str) -> dict[str, Any]:
        return self._owner(uuid).delete(caller, resource, uuid)

    def trash(self, caller: Caller, resource: str, uuid: str) -> dict[str, Any]:
        return self._owner(uuid).trash(caller, resource, uuid)

    def untrash(self, caller: Caller, resource: str, uuid: str) -> dict[str, Any]:
        return self._owner(uuid).untrash(caller, resource, uuid)


def _uuids_by_cluster(filters: list[list[Any]]) -> dict[str, set[str]] | None:
    """If the filters select by UUID only, the UUIDs grouped by owning cluster; else None."""
    if not filters:
        return None
    groups: dict[str, set[str]] = {}
    for attr, op, operand in filters:
        if attr != "uuid" or op not in ("=", "in"):
            return None
        for uuid in operand if op == "in" else [operand]:
            if not isinstance(uuid, str) or not UUID_RE.fullmatch(uuid):
                return None
            groups.setdefault(uuid[:5], set()).add(uuid)
    return groups
