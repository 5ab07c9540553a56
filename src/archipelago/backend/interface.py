"""One interface for every object operation; the local engine (backend/local.py), RemoteBackend
and FederatedBackend (federation/) implement it. Plain Python: no HTTP and no database in here.
Its vocabulary of callers and records is auth/caller.py's, named here for the layers above."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..auth.caller import Caller, Record
from ..resources.collection_files import FilesQuery

__all__ = ["Backend", "Caller", "Changes", "ListParams", "Record", "Scopes"]

Scopes = list[str]  # Arvados token scopes ("all", or "METHOD /path"); an alias: `list` is a method below
Changes = list[Record]  # changes of the stream (`kind`, `uuid`, `owner_uuid`, `event_type`, `seq`); an alias too


@dataclass
class ListParams:
    filters: list[list[Any]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    limit: int = 100
    offset: int = 0
    select: list[str] | None = None
    count: str = "exact"  # "exact" or "none"
    include_trash: bool = False


class Backend(Protocol):
    def authenticate(self, token: str, remote: str | None = None) -> Caller: ...

    def known_caller(self, token: str, remote: str | None = None) -> Caller | None: ...

    def this_cluster(self) -> Backend:
        """The backend answering from this cluster alone (for requests a peer forwarded: one hop)."""
        ...

    def get(self, caller: Caller, resource: str, uuid: str, select: list[str] | None = None,
            include_trash: bool = False) -> Record:
        """One object; a trashed one only with include_trash (else 404, as in Arvados)."""
        ...

    def list(self, caller: Caller, resource: str, params: ListParams) -> Record: ...

    def collection_files(self, caller: Caller, key: str, query: FilesQuery) -> Record:
        """A collection's (UUID or PDH) file or directory at `query.path`: a directory's listing or a
        file's signed segments, read from an index of its manifest (never the whole manifest), for
        exactly those who may read the collection."""
        ...

    def create(self, caller: Caller, resource: str, attrs: Record,
               ensure_unique_name: bool = False, cluster_id: str | None = None) -> Record: ...

    def update(self, caller: Caller, resource: str, uuid: str, attrs: Record) -> Record: ...

    def delete(self, caller: Caller, resource: str, uuid: str) -> Record: ...

    def trash(self, caller: Caller, resource: str, uuid: str) -> Record: ...

    def untrash(self, caller: Caller, resource: str, uuid: str) -> Record: ...

    def act(self, caller: Caller, resource: str, uuid: str, action: str, method: str, params: Record) -> Record:
        """An action on one object beyond CRUD (`containers/{uuid}/lock`)."""
        ...

    def delegate(self, caller: Caller, scopes: Scopes, seconds: float) -> str:
        """A new token of the caller's, limited to `scopes` and `seconds`, for work that runs
        elsewhere on their behalf (a container on another cluster)."""
        ...

    def user_current(self, caller: Caller) -> Record: ...

    def token_current(self, caller: Caller) -> Record: ...

    def readable_changes(self, caller: Caller, changes: Changes) -> Changes:
        """Of changes committed on this cluster (the change stream: `kind`, `uuid`, `owner_uuid`,
        `event_type`, `seq`), those the caller may hear of: about objects they may read, as GET
        judges them. In the order given."""
        ...

    def keep_services(self, caller: Caller | None = None) -> Record:
        """This cluster's Keep services and gateways; a gateway's `gateway_source` only for a caller
        who may register through it (None: an anonymous caller)."""
        ...
