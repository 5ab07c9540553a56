"""RemoteBackend: the Backend interface, implemented by calling a peer cluster's REST API.

Every call carries the caller's token salted for that peer (reference §5.2), so the peer can
check the identity with the caller's home cluster and nothing more, and `forwarded_for` so the
peer answers from its own database only (one hop, never a loop).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import urllib3

from ..auth.salt import SaltError, salt_token
from ..config import RemoteClusterConfig
from .backend import ApiError, Caller, ListParams

FORWARDED_FOR = "forwarded_for"


class RemoteBackend:
    def __init__(self, cluster_id: str, remote: RemoteClusterConfig, local_cluster_id: str,
                 timeout: float = 10.0):
        self.cluster_id, self.remote, self.local_cluster_id = cluster_id, remote, local_cluster_id
        self._http = urllib3.PoolManager(
            cert_reqs="CERT_NONE" if remote.insecure else "CERT_REQUIRED", retries=False, maxsize=16,
            timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
        )

    def token_for(self, caller: Caller) -> str:
        try:
            return salt_token(caller.token, self.cluster_id)
        except SaltError:
            return caller.token  # already salted (a visitor's token) or not v2: pass it on as it is

    def _call(self, caller: Caller, method: str, path: str, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None) -> dict[str, Any]:
        query = {**(params or {}), FORWARDED_FOR: self.local_cluster_id}
        url = f"{self.remote.url}/arvados/v1/{path}?{urlencode(query)}"
        headers = {"Authorization": f"Bearer {self.token_for(caller)}"}
        encoded = None
        if body is not None:
            encoded = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            resp = self._http.request(method, url, body=encoded, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            raise ApiError(f"cluster {self.cluster_id} is unreachable: {exc.__class__.__name__}", 502) from None
        try:
            data = json.loads(resp.data) if resp.data else {}
        except json.JSONDecodeError:
            raise ApiError(f"cluster {self.cluster_id} sent an unreadable answer ({resp.status})", 502) from None
        if resp.status >= 400:
            errors = "; ".join(data.get("errors", [])) if isinstance(data, dict) else ""
            raise ApiError(f"cluster {self.cluster_id}: {errors or resp.reason}", resp.status)
        return data

    # the Backend interface
    def get(self, caller: Caller, resource: str, uuid: str, select: list[str] | None = None) -> dict[str, Any]:
        params = {"select": json.dumps(select)} if select else None
        return self._call(caller, "GET", f"{resource}/{quote(uuid)}", params)

    def list(self, caller: Caller, resource: str, params: ListParams) -> dict[str, Any]:
        query: dict[str, Any] = {"filters": json.dumps(params.filters), "order": json.dumps(params.order),
                                 "limit": params.limit, "offset": params.offset, "count": params.count}
        if params.select:
            query["select"] = json.dumps(params.select)
        return self._call(caller, "GET", resource, query)

    def create(self, caller: Caller, resource: str, attrs: dict[str, Any],
               ensure_unique_name: bool = False, cluster_id: str | None = None) -> dict[str, Any]:
        params = {"ensure_unique_name": "true"} if ensure_unique_name else None
        return self._call(caller, "POST", resource, params, {resource[:-1]: attrs})

    def update(self, caller: Caller, resource: str, uuid: str, attrs: dict[str, Any]) -> dict[str, Any]:
        return self._call(caller, "PUT", f"{resource}/{uuid}", None, {resource[:-1]: attrs})

    def delete(self, caller: Caller, resource: str, uuid: str) -> dict[str, Any]:
        return self._call(caller, "DELETE", f"{resource}/{uuid}")

    def trash(self, caller: Caller, resource: str, uuid: str) -> dict[str, Any]:
        return self._call(caller, "POST", f"{resource}/{uuid}/trash")

    def untrash(self, caller: Caller, resource: str, uuid: str) -> dict[str, Any]:
        return self._call(caller, "POST", f"{resource}/{uuid}/untrash")
