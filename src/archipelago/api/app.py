"""The API server's HTTP layer: parse, authenticate, call the Backend, render. Nothing else.

Starlette on uvicorn: the API carries small JSON documents, so the ASGI stack's convenience
wins here (block bytes never pass through the API server; they go to keepstore).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..backend.interface import Backend, Caller, ListParams
from ..config import ClusterConfig
from ..db.events import EventHub
from ..errors import ArchipelagoError, BadRequest, Forbidden, NotFound, Unauthorized
from ..federation.remote import FORWARDED_FOR
from ..formats.tokens import from_authorization_header
from ..resources.names import CLASS_NAMES, body_key
from .discovery import discovery_document, exported_config
from .events import stream as events_stream

log = logging.getLogger(__name__)
T = TypeVar("T")
BODY = "\0body"  # where _params keeps the parsed JSON body
IGNORED_ATTRIBUTES = {"preserve_version"}  # versioning is not implemented; accepting it keeps SDK saves working
IDENTITY_PATHS = {"/arvados/v1/users/current", "/arvados/v1/api_client_authorizations/current"}
# `<resource>/current`: the caller's own record, by the Backend method that answers it
CURRENT = {"users": "user_current", "api_client_authorizations": "token_current"}


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)  # a page of 1000 records: the stdlib encoder took longer than the query


def error(status: int, message: str) -> JSON:
    return JSON({"errors": [message], "error_token": f"{secrets.token_hex(5)}+{status}"}, status_code=status)


async def _params(request: Request) -> dict[str, Any]:
    """Query string, then form or JSON body: Arvados clients use all three. The JSON body itself
    is kept under BODY (it may be the bare attributes of the object to create)."""
    params: dict[str, Any] = dict(request.query_params)
    if request.method in ("POST", "PUT", "PATCH"):
        content_type = request.headers.get("content-type", "")
        if "json" in content_type:
            raw = await request.body()
            if raw:
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise BadRequest(f"request body is not valid JSON: {exc}") from None
                if not isinstance(body, dict):
                    raise BadRequest("request body must be a JSON object")
                params.update(body)
                params[BODY] = body
        elif "form" in content_type:
            params.update(dict(await request.form()))
    return params


def _json_param(params: dict[str, Any], name: str, default: Any) -> Any:
    value = params.get(name, default)
    if isinstance(value, str):
        try:
            return json.loads(value) if value else default
        except json.JSONDecodeError:
            raise BadRequest(f"parameter {name!r} must be JSON") from None
    return value


def _bool(params: dict[str, Any], name: str) -> bool:
    value = params.get(name, False)
    return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")


def _int(params: dict[str, Any], name: str, default: int) -> int:
    try:
        return int(params.get(name, default))
    except (TypeError, ValueError):
        raise BadRequest(f"parameter {name!r} must be an integer") from None


def list_params(params: dict[str, Any]) -> ListParams:
    filters = _json_param(params, "filters", [])
    where = _json_param(params, "where", {})
    if isinstance(where, dict):
        filters = [*filters, *([k, "=", v] for k, v in where.items())]
    order = _json_param(params, "order", [])
    if isinstance(order, str):
        order = [o.strip() for o in order.split(",") if o.strip()]
    select = _json_param(params, "select", None)
    return ListParams(filters=filters, order=order, limit=_int(params, "limit", 100),
                      offset=_int(params, "offset", 0), select=select, count=str(params.get("count", "exact")),
                      include_trash=_bool(params, "include_trash"))


def _attrs(resource: str, params: dict[str, Any]) -> dict[str, Any]:
    key = body_key(resource)
    attrs = params.get(key)
    if isinstance(attrs, str):  # a form or query parameter holding JSON
        attrs = _json_param(params, key, {})
    if attrs is None:  # Arvados also accepts the bare attributes as the JSON body
        attrs = params.get(BODY, {})
    if not isinstance(attrs, dict):
        raise BadRequest(f"'{key}' must be an object")
    return {k: v for k, v in attrs.items() if k not in IGNORED_ATTRIBUTES}


def scope_allows(scopes: tuple[str, ...], method: str, path: str) -> bool:
    """Arvados token scopes: "all", or "METHOD /path" (a trailing "/" matches everything below).
    Reading one's own token record is always allowed."""
    if "all" in scopes or (method == "GET" and path == "/arvados/v1/api_client_authorizations/current"):
        return True
    for scope in scopes:
        scope_method, _, scope_path = scope.partition(" ")
        if scope_method != method:
            continue
        if scope_path == path or (scope_path.endswith("/") and path.startswith(scope_path)):
            return True
    return False


class ApiApp:
    def __init__(self, config: ClusterConfig, backend: Backend, events: EventHub | None = None):
        self.config, self.backend, self.events = config, backend, events
        # Backend calls block (database, peers): they run in these threads. A plain executor, not
        # anyio's thread pool: per request, anyio's bookkeeping cost more than a simple query.
        self._threads = ThreadPoolExecutor(config.api.threads, thread_name_prefix="api")

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, partial(fn, *args))

    async def _caller(self, request: Request, params: dict[str, Any]) -> Caller:
        token = from_authorization_header(request.headers.get("authorization")) or params.get("api_token")
        if not token:
            raise Unauthorized("no API token: send 'Authorization: Bearer <token>'")
        # a salted token is good at home only for identity lookups made on behalf of that cluster
        remote = params.get("remote") if request.method == "GET" and request.url.path in IDENTITY_PATHS else None
        known = self.backend.known_caller(token, remote)
        return known if known is not None else await self._call(self.backend.authenticate, token, remote)

    async def dispatch(self, request: Request) -> Response:
        try:
            params = await _params(request)
            if request.method == "POST" and params.get("_method", "").upper() == "GET":
                method = "GET"
            else:
                method = request.method
            caller = await self._caller(request, params)
            if not scope_allows(caller.scopes, method, request.url.path):
                raise Forbidden(f"this token's scopes do not allow {method} {request.url.path}")
            # a request a peer forwarded is answered from this cluster alone: one hop, never a loop
            backend = self.backend
            if FORWARDED_FOR in params:
                backend = self.backend.this_cluster()
                caller = dataclasses.replace(caller, via=str(params[FORWARDED_FOR]))
            result = await self._route(backend, method, request.path_params, params, caller)
            return JSON(result)
        except ArchipelagoError as exc:
            return error(exc.status, str(exc))

    async def _route(self, backend: Backend, method: str, path: dict[str, str], params: dict[str, Any],
                     caller: Caller) -> Any:
        resource = path["resource"]
        uuid = path.get("uuid")
        action = path.get("action")
        if resource not in CLASS_NAMES:
            raise NotFound(f"no such resource type {resource!r}")
        call = self._call
        if uuid == "current" and method == "GET" and resource in CURRENT:
            return await call(getattr(backend, CURRENT[resource]), caller)
        if action in ("trash", "untrash") and method == "POST":
            return await call(getattr(backend, action), caller, resource, uuid)
        if action is not None and uuid is not None:
            return await call(backend.act, caller, resource, uuid, action, method, params)
        if uuid is None:
            if method == "GET":
                return await call(backend.list, caller, resource, list_params(params))
            if method == "POST":
                return await call(backend.create, caller, resource, _attrs(resource, params),
                                  _bool(params, "ensure_unique_name"), params.get("cluster_id") or None)
        elif method == "GET":
            return await call(backend.get, caller, resource, uuid, _json_param(params, "select", None))
        elif method in ("PUT", "PATCH"):
            return await call(backend.update, caller, resource, uuid, _attrs(resource, params))
        elif method == "DELETE":
            return await call(backend.delete, caller, resource, uuid)
        raise ArchipelagoError(f"{method} not allowed here", 405)

    async def discovery(self, request: Request) -> Response:
        root = self.config.api.external_url or f"{request.url.scheme}://{request.url.netloc}"
        return JSON(discovery_document(self.config, root))

    async def exported_config(self, request: Request) -> Response:
        return JSON(exported_config(self.config))

    async def keep_services(self, request: Request) -> Response:
        return JSON(await self._call(self.backend.keep_services))

    async def event_stream(self, request: Request) -> Response:
        try:
            params = dict(request.query_params)
            caller = await self._caller(request, params)
            if self.events is None:
                raise NotFound("this API process has no event stream")
            kinds = {k for k in params.get("kinds", "").split(",") if k} or None
            after = request.headers.get("last-event-id") or params.get("after")
            return events_stream(self.events, caller, kinds, int(after) if after and after.isdigit() else None)
        except ArchipelagoError as exc:
            return error(exc.status, str(exc))

    async def ping(self, request: Request) -> Response:
        return JSON({"health": "OK"})

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(routes=[
            Route("/discovery/v1/apis/arvados/v1/rest", self.discovery),
            Route("/arvados/v1/config", self.exported_config),
            Route("/arvados/v1/keep_services/accessible", self.keep_services),
            Route("/arvados/v1/keep_services", self.keep_services),
            Route("/_health/ping", self.ping),
            Route("/arvados/v1/events", self.event_stream),
            Route("/arvados/v1/{resource}", self.dispatch, methods=methods),
            Route("/arvados/v1/{resource}/{uuid}", self.dispatch, methods=methods),
            Route("/arvados/v1/{resource}/{uuid}/{action}", self.dispatch, methods=methods),
        ])


def create_app(config: ClusterConfig, backend: Backend, events: EventHub | None = None) -> Starlette:
    return ApiApp(config, backend, events).app()
