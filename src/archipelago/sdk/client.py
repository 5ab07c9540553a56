"""ApiClient: typed calls to a cluster's REST API (`/arvados/v1/...`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..keep.client import KeepClient
from ..keep.services import KeepService
from ..rpc import ApiConnection, ApiRequestError, Transport
from .profiles import Profile, resolve

# aliases: inside Endpoint, `list` names the method
Filters = list[list[Any]]
Names = list[str]


class Endpoint:
    """The calls on one of the API's resources (`client.collections.list(...)`)."""

    def __init__(self, client: ApiClient, name: str):
        self._client, self.name = client, name

    def get(self, uuid: str, select: Names | None = None) -> dict[str, Any]:
        params = {"select": json.dumps(select)} if select else None
        return self._client.request("GET", f"{self.name}/{uuid}", params=params)

    def list(self, filters: Filters | None = None, order: Names | None = None, limit: int = 100,
             offset: int = 0, select: Names | None = None, count: str = "exact") -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "offset": offset, "count": count}
        if filters:
            params["filters"] = json.dumps(filters)
        if order:
            params["order"] = json.dumps(order)
        if select:
            params["select"] = json.dumps(select)
        return self._client.request("GET", self.name, params=params)

    def list_all(self, filters: Filters | None = None, order: Names | None = None,
                 page: int = 1000, select: Names | None = None) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            batch = self.list(filters, order or ["created_at asc"], limit=page, offset=offset, count="none",
                              select=select)
            yield from batch["items"]
            if len(batch["items"]) < page:
                return
            offset += len(batch["items"])

    def create(self, attrs: dict[str, Any], ensure_unique_name: bool = False) -> dict[str, Any]:
        params = {"ensure_unique_name": "true"} if ensure_unique_name else None
        return self._client.request("POST", self.name, params=params, body={self.name[:-1]: attrs})

    def update(self, uuid: str, attrs: dict[str, Any]) -> dict[str, Any]:
        return self._client.request("PUT", f"{self.name}/{uuid}", body={self.name[:-1]: attrs})

    def delete(self, uuid: str) -> dict[str, Any]:
        return self._client.request("DELETE", f"{self.name}/{uuid}")

    def current(self) -> dict[str, Any]:
        return self._client.request("GET", f"{self.name}/current")


class ApiClient:
    def __init__(self, host: str, token: str, insecure: bool = False, timeout: float = 60.0,
                 transport: Transport | None = None):
        self.connection = ApiConnection(host, token, insecure, timeout, transport)
        self.base, self.token, self.insecure = self.connection.base, token, insecure
        self.users = Endpoint(self, "users")
        self.api_client_authorizations = Endpoint(self, "api_client_authorizations")
        self.groups = Endpoint(self, "groups")
        self.links = Endpoint(self, "links")
        self.collections = Endpoint(self, "collections")
        self.workflows = Endpoint(self, "workflows")
        self.container_requests = Endpoint(self, "container_requests")
        self.containers = Endpoint(self, "containers")
        self._keep: KeepClient | None = None
        self._config: dict[str, Any] | None = None

    @classmethod
    def from_profile(cls, profile: Profile) -> ApiClient:
        return cls(profile.host, profile.token, profile.insecure)

    @classmethod
    def from_env(cls, profile: str | None = None) -> ApiClient:
        found = resolve(profile)
        if found is None:
            raise ApiRequestError(400, "no cluster configured: set ARCHI_API_HOST and ARCHI_API_TOKEN "
                                     "or run `archi login`")
        return cls.from_profile(found)

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.connection.request(method, path, params, body)

    def config(self) -> dict[str, Any]:
        """The cluster's exported configuration (fetched once per client: it changes only on restart)."""
        if self._config is None:
            self._config = self.request("GET", "config")
        return self._config

    def keep(self, **kwargs: Any) -> KeepClient:
        """A KeepClient for this cluster's keep services, signing with this client's token."""
        if self._keep is None or kwargs:
            services = [KeepService.from_record(item) for item in
                        self.request("GET", "keep_services/accessible")["items"]]
            self._keep = KeepClient(services, self.token, **{"insecure": self.insecure, **kwargs})
        return self._keep
