"""HTTP for a collection's files by path (`GET /arvados/v1/collections/{UUID or PDH}/files?path=…`):
a directory's listing or one file's signed segments, answered from the index of the manifest
(resources/collection_files.py) through the Backend — federated collections too. Parse,
authenticate, call, render: judged as `GET /arvados/v1/collections/…` is (token, scopes, a request
a peer forwarded answered here alone)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import ArchipelagoError, BadRequest, Forbidden
from ..ga4gh.paths import collection_key, file_path
from ..resources.collection_files import MAX_LIMIT, FilesQuery

if TYPE_CHECKING:
    from .app import ApiApp


def _flag(params: dict[str, Any], name: str) -> bool:
    value = str(params.get(name, "false")).lower()
    if value not in ("true", "false", "1", "0"):
        raise BadRequest(f"{name} must be true or false, not {value!r}")
    return value in ("true", "1")


def _count(params: dict[str, Any], name: str, default: int) -> int:
    value = str(params.get(name, default))
    if not value.isdigit() or len(value) > 18:
        raise BadRequest(f"{name} must be a whole number, not {value!r}")
    return int(value)


def files_query(params: dict[str, Any]) -> FilesQuery:
    return FilesQuery(path=file_path(str(params.get("path", ""))), recursive=_flag(params, "recursive"),
                      segments=_flag(params, "segments"), offset=_count(params, "offset", 0),
                      limit=min(_count(params, "limit", 1000), MAX_LIMIT))


class CollectionFilesHttp:
    def __init__(self, api: ApiApp):
        self.api = api

    async def files(self, request: Request) -> Response:
        from .app import JSON, error, scope_allows

        try:
            params: dict[str, Any] = dict(request.query_params)
            caller = await self.api._caller(request, params)
            if not scope_allows(caller.scopes, "GET", request.url.path):
                raise Forbidden(f"this token's scopes do not allow GET {request.url.path}")
            key = collection_key(request.path_params["collection"])
            query = files_query(params)
            backend, caller = self.api.hop(caller, params)  # a peer's request: this cluster alone, one hop
            return JSON(await self.api._call(backend.collection_files, caller, key, query))
        except ArchipelagoError as exc:
            return error(exc.status, str(exc))

    def routes(self) -> list[Route]:
        return [Route("/arvados/v1/collections/{collection}/files", self.files, methods=["GET"])]
