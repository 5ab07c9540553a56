"""RemoteBackend: the Backend interface, implemented by calling a peer cluster's REST API.

Every call carries the caller's token salted for that peer (reference §5.2), so the peer can
check the identity with the caller's home cluster and nothing more, and `forwarded_for` so the
peer answers from its own database only (one hop, never a loop).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from ..backend.interface import Caller, ListParams
from ..errors import ArchipelagoError, BadGateway
from ..formats.tokens import salt_for
from ..resources.collection_files import FilesQuery
from ..resources.registry import TYPES
from ..rpc import ApiConnection, ApiRequestError, Transport, Unreachable

FORWARDED_FOR = "forwarded_for"


class RemoteBackend:
    def __init__(self, cluster_id: str, url: str, local_cluster_id: str, insecure: bool = False,
                 timeout: float = 10.0, transport: Transport | None = None):
        self.cluster_id, self.local_cluster_id = cluster_id, local_cluster_id
        self.connection = ApiConnection(url, None, insecure, timeout, transport)

    def token_for(self, caller: Caller) -> str:
        return salt_for(caller.token, self.cluster_id)

    def _call(self, caller: Caller, method: str, path: str, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None) -> dict[str, Any]:
        query = {**(params or {}), FORWARDED_FOR: self.local_cluster_id}
        try:
            return self.connection.request(method, path, query, body, token=self.token_for(caller))
        except Unreachable as exc:
            raise BadGateway(f"cluster {self.cluster_id} is unreachable: {exc.cause}") from None
        except ApiRequestError as exc:
            raise ArchipelagoError(f"cluster {self.cluster_id}: {exc.message}", exc.status) from None

    # the Backend interface
    def get(self, caller: Caller, resource: str, uuid: str, select: list[str] | None = None,
            include_trash: bool = False) -> dict[str, Any]:
        params: dict[str, Any] = {"select": json.dumps(select)} if select else {}
        if include_trash:
            params["include_trash"] = "true"
        return self._call(caller, "GET", f"{resource}/{quote(uuid)}", params or None)

    def list(self, caller: Caller, resource: str, params: ListParams) -> dict[str, Any]:
        query: dict[str, Any] = {"filters": json.dumps(params.filters), "order": json.dumps(params.order),
                                 "limit": params.limit, "offset": params.offset, "count": params.count,
                                 **({"include_trash": "true"} if params.include_trash else {})}
        if params.select:
            query["select"] = json.dumps(params.select)
        return self._call(caller, "GET", resource, query)

    def collection_files(self, caller: Caller, key: str, query: FilesQuery) -> dict[str, Any]:
        return self._call(caller, "GET", f"collections/{quote(key)}/files", query.as_params())

    def create(self, caller: Caller, resource: str, attrs: dict[str, Any],
               ensure_unique_name: bool = False, cluster_id: str | None = None) -> dict[str, Any]:
        params = {"ensure_unique_name": "true"} if ensure_unique_name else None
        return self._call(caller, "POST", resource, params, {TYPES[resource].body_key: attrs})

    def update(self, caller: Caller, resource: str, uuid: str, attrs: dict[str, Any]) -> dict[str, Any]:
        return self._call(caller, "PUT", f"{resource}/{uuid}", None, {TYPES[resource].body_key: attrs})

    def delete(self, caller: Caller, resource: str, uuid: str) -> dict[str, Any]:
        return self._call(caller, "DELETE", f"{resource}/{uuid}")

    def trash(self, caller: Caller, resource: str, uuid: str) -> dict[str, Any]:
        return self._call(caller, "POST", f"{resource}/{uuid}/trash")

    def untrash(self, caller: Caller, resource: str, uuid: str) -> dict[str, Any]:
        return self._call(caller, "POST", f"{resource}/{uuid}/untrash")

    def act(self, caller: Caller, resource: str, uuid: str, action: str, method: str,
            params: dict[str, Any]) -> dict[str, Any]:
        return self._call(caller, method, f"{resource}/{uuid}/{action}")
