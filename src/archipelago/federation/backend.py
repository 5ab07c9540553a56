"""One interface for every object operation; LocalBackend, RemoteBackend and FederatedBackend
implement it. Plain Python: no HTTP in here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class ApiError(Exception):
    """An error a client can act on, with the HTTP status the API answers with."""

    status = 500

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Unprocessable(ApiError):
    status = 422


@dataclass(frozen=True)
class Caller:
    """Who is asking: the user behind the token, and the exact token string (signatures use it)."""

    user_uuid: str
    token: str
    is_admin: bool = False
    authorization_uuid: str = ""
    scopes: tuple[str, ...] = ("all",)
    via: str | None = None  # the cluster that forwarded this request, if any


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

    def get(self, caller: Caller, resource: str, uuid: str, select: list[str] | None = None) -> dict[str, Any]: ...

    def list(self, caller: Caller, resource: str, params: ListParams) -> dict[str, Any]: ...

    def create(self, caller: Caller, resource: str, attrs: dict[str, Any],
               ensure_unique_name: bool = False, cluster_id: str | None = None) -> dict[str, Any]: ...

    def update(self, caller: Caller, resource: str, uuid: str, attrs: dict[str, Any]) -> dict[str, Any]: ...

    def delete(self, caller: Caller, resource: str, uuid: str) -> dict[str, Any]: ...

    def trash(self, caller: Caller, resource: str, uuid: str) -> dict[str, Any]: ...

    def untrash(self, caller: Caller, resource: str, uuid: str) -> dict[str, Any]: ...

    def user_current(self, caller: Caller) -> dict[str, Any]: ...

    def token_current(self, caller: Caller) -> dict[str, Any]: ...

    def keep_services(self) -> dict[str, Any]: ...
