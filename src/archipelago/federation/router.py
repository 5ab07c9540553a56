"""FederatedBackend: chooses, per operation, between this cluster's database and its peers.

The rules (reference §7): a UUID belongs to the cluster named by its first five characters;
create goes to `cluster_id`; lists filtered only by UUIDs are split per cluster and merged; a
collection asked for by PDH is looked up here first, then on the peers that hold it — which the
federation's resolver says in one query, whatever the number of sites (resolver/) — and only if none
of them has it (the index lags a write by up to a heartbeat) on the others; on every peer at once when
no resolver answers. The first answer whose manifest really hashes to that PDH wins. Manifests from peers come back with
`+R<cluster>-` signatures, which this cluster's keepstore knows to fetch from that peer.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Protocol

from ..backend.interface import Backend, Caller, Changes, ListParams, Record, Scopes
from ..errors import ArchipelagoError, NotFound, Unprocessable
from ..formats.manifest import portable_data_hash
from ..formats.signing import local_to_remote
from ..ids import PDH_RE, UUID_RE
from ..resources.collection_files import FilesQuery, in_memory_answer
from ..resources.registry import TYPES
from .remote import RemoteBackend


class ContentIndex(Protocol):
    """Who holds a PDH (resolver/client.py's ResolverClient): None when no resolver answers."""

    def holders(self, pdh: str) -> Any: ...

    def covered(self, url: str) -> set[str]: ...


class FederatedBackend:
    def __init__(self, local: Backend, remotes: dict[str, RemoteBackend], cluster_id: str,
                 login_cluster: str | None = None, content_index: ContentIndex | None = None):
        self.local, self.remotes = local, remotes
        self.content_index = content_index
        self.cluster_id = cluster_id
        self.login_cluster = login_cluster if login_cluster != cluster_id else None
        self._pool = ThreadPoolExecutor(max(4, len(remotes)), thread_name_prefix="federation")

    # identity and keep services are always this cluster's
    def authenticate(self, token: str, remote: str | None = None) -> Caller:
        return self.local.authenticate(token, remote)

    def known_caller(self, token: str, remote: str | None = None) -> Caller | None:
        return self.local.known_caller(token, remote)

    def this_cluster(self) -> Backend:
        return self.local

    def user_current(self, caller: Caller) -> Record:
        return self.local.user_current(caller)

    def token_current(self, caller: Caller) -> Record:
        return self.local.token_current(caller)

    def keep_services(self, caller: Caller | None = None) -> Record:
        return self.local.keep_services(caller)

    def readable_changes(self, caller: Caller, changes: Changes) -> Changes:
        return self.local.readable_changes(caller, changes)  # the stream is of this cluster's own changes

    # routing
    def _owner(self, uuid: str) -> Backend | RemoteBackend:
        if UUID_RE.fullmatch(uuid) and uuid[:5] in self.remotes:
            return self.remotes[uuid[:5]]
        return self.local

    @staticmethod
    def _from_remote(cluster_id: str, record: Record) -> Record:
        """A peer's record as this cluster hands it on: its block signatures become `+R` hints."""
        if record.get("manifest_text"):
            record["manifest_text"] = local_to_remote(record["manifest_text"], cluster_id)
        return record

    def get(self, caller: Caller, resource: str, uuid: str, select: list[str] | None = None,
            include_trash: bool = False) -> Record:
        kind = TYPES.get(resource)
        if kind is not None and kind.content_addressed and PDH_RE.fullmatch(uuid):
            return self._by_content(caller, resource, uuid, select)
        backend = self._owner(uuid)
        record = backend.get(caller, resource, uuid, select, include_trash)
        return record if backend is self.local else self._from_remote(uuid[:5], record)

    def _by_content(self, caller: Caller, resource: str, pdh: str, select: list[str] | None) -> Record:
        try:
            return self.local.get(caller, resource, pdh, select)
        except NotFound:
            pass
        wanted = None if select is None else sorted({*select, "manifest_text"})
        named = self._peers_holding(pdh)
        misses: list[str] = []
        refusals: list[str] = []
        # the peers the resolver names first; the others only if none of them answers: the index
        # lags a write by up to a heartbeat, so "nobody holds it" is not taken as its final word
        rounds = [list(self.remotes)] if named is None else [named, [p for p in self.remotes if p not in named]]
        for peers in rounds:
            found = self._first_verified(caller, resource, pdh, wanted, peers, misses, refusals)
            if found is not None:
                return found
            if refusals:  # it exists, and its cluster said no: say that rather than "not found"
                raise ArchipelagoError("; ".join(refusals), 403)
        how = "any federated cluster" if named is None else f"the {len(named)} cluster(s) the resolver named, then " \
            "the others"
        raise NotFound(f"collection {pdh} not found here or on {how} ({'; '.join(misses) or 'no peers'})")

    def _first_verified(self, caller: Caller, resource: str, pdh: str, wanted: list[str] | None, peers: list[str],
                        misses: list[str], refusals: list[str]) -> Record | None:
        """The first answer of these peers (asked at once) whose manifest really hashes to `pdh`."""
        futures = {self._pool.submit(self.remotes[cluster_id].get, caller, resource, pdh, wanted): cluster_id
                   for cluster_id in peers}
        for future in as_completed(futures):
            cluster_id = futures[future]
            try:
                record = future.result()
            except ArchipelagoError as exc:
                (refusals if exc.status == 403 else misses).append(f"{cluster_id}: {exc}")
                continue
            if portable_data_hash(record.get("manifest_text", "")) == pdh:  # verify, don't trust
                return self._from_remote(cluster_id, record)
            misses.append(f"{cluster_id}: answered with a manifest that does not hash to {pdh}")
        return None

    def _peers_holding(self, pdh: str) -> list[str] | None:
        """The peers a resolver says hold a PDH (live ones first), plus any peer it does not cover;
        None when no resolver answers."""
        index = self.content_index
        answer = index.holders(pdh) if index is not None else None
        if index is None or answer is None:
            return None
        covered = index.covered(answer.url)
        holders = [h["site"] for h in answer.data.get("holders", []) if h.get("site") in self.remotes]
        return holders + [p for p in self.remotes if p not in covered and p not in holders]

    def collection_files(self, caller: Caller, key: str, query: FilesQuery) -> Record:
        """A UUID's owner answers from its index (its signatures become `+R` here); a PDH held only
        by peers is found as GET finds it, its manifest verified against the PDH, and answered here."""
        backend = self._owner(key)
        if backend is not self.local:
            found = backend.collection_files(caller, key, query)
            for item in found.get("items", []):
                if "segments" in item:
                    item["segments"] = [[local_to_remote(s[0], key[:5]), *s[1:]] for s in item["segments"]]
            return found
        if not PDH_RE.fullmatch(key) or not self.remotes:
            return self.local.collection_files(caller, key, query)
        try:
            return self.local.collection_files(caller, key, query)
        except NotFound:
            record = self._by_content(caller, "collections", key, ["portable_data_hash", "manifest_text"])
        return {"kind": "arvados#collectionFiles", "collection": key, "portable_data_hash": key,
                **in_memory_answer(record["manifest_text"], query)}

    def list(self, caller: Caller, resource: str, params: ListParams) -> Record:
        by_cluster = _uuids_by_cluster(params.filters)
        if by_cluster is None or set(by_cluster) <= {self.cluster_id}:
            return self.local.list(caller, resource, params)
        items: list[Record] = []
        for cluster_id, uuids in sorted(by_cluster.items()):
            backend = self.remotes.get(cluster_id, self.local) if cluster_id != self.cluster_id else self.local
            part = ListParams(filters=[["uuid", "in", sorted(uuids)]], order=params.order, limit=len(uuids),
                              select=params.select, count="none", include_trash=params.include_trash)
            result = backend.list(caller, resource, part)
            items += [item if backend is self.local else self._from_remote(cluster_id, item)
                      for item in result["items"]]
        return {"kind": TYPES[resource].kind + "List", "items": items, "items_available": len(items), "offset": 0,
                "limit": len(items)}

    def create(self, caller: Caller, resource: str, attrs: Record, ensure_unique_name: bool = False,
               cluster_id: str | None = None) -> Record:
        kind = TYPES.get(resource)
        if self.login_cluster and kind is not None and kind.issued_by_login_cluster:
            cluster_id = self.login_cluster  # users and tokens are issued by the login cluster alone
        if cluster_id and cluster_id != self.cluster_id:
            if cluster_id not in self.remotes:
                raise Unprocessable(f"cluster_id {cluster_id!r} is not a cluster this one federates with")
            runtime = kind.runtime_token(attrs) if kind is not None else None
            if runtime is not None and not attrs.get("runtime_token"):  # its work runs there as the requester
                attrs = {**attrs, "runtime_token": self.local.delegate(caller, *runtime)}
            record = self.remotes[cluster_id].create(caller, resource, attrs, ensure_unique_name)
            return self._from_remote(cluster_id, record)
        return self.local.create(caller, resource, attrs, ensure_unique_name)

    def delegate(self, caller: Caller, scopes: Scopes, seconds: float) -> str:
        return self.local.delegate(caller, scopes, seconds)

    def update(self, caller: Caller, resource: str, uuid: str, attrs: Record) -> Record:
        return self._owner(uuid).update(caller, resource, uuid, attrs)

    def delete(self, caller: Caller, resource: str, uuid: str) -> Record:
        return self._owner(uuid).delete(caller, resource, uuid)

    def trash(self, caller: Caller, resource: str, uuid: str) -> Record:
        return self._owner(uuid).trash(caller, resource, uuid)

    def untrash(self, caller: Caller, resource: str, uuid: str) -> Record:
        return self._owner(uuid).untrash(caller, resource, uuid)

    def act(self, caller: Caller, resource: str, uuid: str, action: str, method: str, params: Record) -> Record:
        return self._owner(uuid).act(caller, resource, uuid, action, method, params)


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
