"""The API server's HTTP layer: parse, authenticate, call the Backend, render. Nothing else.

Starlette on uvicorn: the API carries small JSON documents, so the ASGI stack's convenience
wins here (block bytes never pass through the API server; they go to keepstore).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..backend.contents import group_contents, shared_with
from ..backend.interface import Backend, Caller, ListParams, Record
from ..config import ClusterConfig
from ..db.events import EventHub
from ..errors import (
    ArchipelagoError,
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from ..federation.remote import FORWARDED_FOR
from ..formats.tokens import from_authorization_header
from ..resources.registry import TYPES
from ..web.app import web_routes
from .collection_files import CollectionFilesHttp
from .discovery import discovery_document, exported_config
from .events import stream as events_stream
from .ga4gh import Ga4ghHttp
from .notebook import PublishedHttp
from .resolver_feed import ResolverFeedHttp

log = logging.getLogger(__name__)
T = TypeVar("T")
BODY = "\0body"  # where the parsed JSON body is kept, whole
IGNORED_ATTRIBUTES = {"preserve_version"}  # versioning is not implemented; accepting it keeps SDK saves working
IDENTITY_PATHS = {"/arvados/v1/users/current", "/arvados/v1/api_client_authorizations/current"}
# `<resource>/current`: the caller's own record, by the Backend method that answers it
CURRENT = {"users": "user_current", "api_client_authorizations": "token_current"}
# `<resource>/<name>` lists across kinds, composed from Backend.list (backend/contents.py)
LISTINGS = {("groups", "contents"): group_contents, ("groups", "shared"): shared_with}


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)  # a page of 1000 records: the stdlib encoder took longer than the query


def error(status: int, message: str) -> JSON:
    return JSON({"errors": [message], "error_token": f"{secrets.token_hex(5)}+{status}"}, status_code=status)


FORM = "application/x-www-form-urlencoded"
TOKEN_FORM_BYTES = 1 << 20  # a form read for its api_token before anyone is known: no more than this


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) beyond `limit` bytes before more is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes is over this cluster's limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over this cluster's limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    """A JSON object or a URL-encoded form (Arvados clients send both); the JSON object itself is
    also kept under BODY (it may be the bare attributes of the object to create)."""
    media = content_type.split(";")[0].strip().lower()
    if not raw:
        return {}
    if media == FORM:
        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"request body is not a valid URL-encoded form: {exc}") from None
    if media and "json" not in media:
        raise UnsupportedMediaType(f"request body must be JSON or {FORM}, not {media}")
    try:
        body = orjson.loads(raw)  # refuses bad UTF-8, lone surrogates and nesting past 1024 levels
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return {**body, BODY: body}


def _json_param(params: dict[str, Any], name: str, default: Any) -> Any:
    value = params.get(name, default)
    if isinstance(value, str):
        try:
            return orjson.loads(value) if value else default
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"parameter {name!r} must be JSON: {exc}") from None
    return value


def _bool(params: dict[str, Any], name: str) -> bool:
    value = params.get(name, False)
    return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")


def _int(params: dict[str, Any], name: str, default: int) -> int:
    """A count or position: a whole number from 0 to 2^63-1."""
    value = params.get(name, default)
    try:
        number = int(value) if not isinstance(value, bool | float) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not 0 <= number < 1 << 63:
        raise BadRequest(f"parameter {name!r} must be a whole number from 0 to 2^63-1, got {value!r}")
    return number


def _names(params: dict[str, Any], name: str) -> list[str] | None:
    """A list of attribute names (`select`), or None when absent."""
    value = _json_param(params, name, None)
    if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        raise BadRequest(f"parameter {name!r} must be a list of attribute names, got {value!r}")
    return value


def list_params(params: dict[str, Any]) -> ListParams:
    filters = _json_param(params, "filters", [])
    if not isinstance(filters, list):
        raise BadRequest(f"parameter 'filters' must be a list of [attribute, operator, operand], got {filters!r}")
    where = _json_param(params, "where", {})
    if not isinstance(where, dict | None):
        raise BadRequest(f"parameter 'where' must be an object, got {where!r}")
    filters = [*filters, *([k, "=", v] for k, v in (where or {}).items())]
    order = params.get("order", [])
    if isinstance(order, str) and order.lstrip().startswith("["):
        order = _json_param(params, "order", [])
    if isinstance(order, str):  # Arvados also takes "name asc, created_at desc" as it is
        order = [o.strip() for o in order.split(",") if o.strip()]
    if not isinstance(order, list) or not all(isinstance(o, str) for o in order):
        raise BadRequest(f"parameter 'order' must be a list of 'attribute [asc|desc]', got {order!r}")
    select = _names(params, "select")
    return ListParams(filters=filters, order=order, limit=_int(params, "limit", 100),
                      offset=_int(params, "offset", 0), select=select, count=str(params.get("count", "exact")),
                      include_trash=_bool(params, "include_trash"))


def _attrs(resource: str, params: dict[str, Any]) -> dict[str, Any]:
    key = TYPES[resource].body_key
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

    @staticmethod
    def _token(request: Request, params: dict[str, Any]) -> str | None:
        return from_authorization_header(request.headers.get("authorization")) or params.get("api_token")

    async def _caller(self, request: Request, params: dict[str, Any]) -> Caller:
        token = self._token(request, params)
        if not token:
            raise Unauthorized("no API token: send 'Authorization: Bearer <token>'")
        # a salted token is good at home only for identity lookups made on behalf of that cluster
        remote = params.get("remote") if request.method == "GET" and request.url.path in IDENTITY_PATHS else None
        known = self.backend.known_caller(token, remote)
        return known if known is not None else await self._call(self.backend.authenticate, token, remote)

    async def dispatch(self, request: Request) -> Response:
        try:
            # the token is checked before the body is read: a stranger's upload costs nothing
            params: dict[str, Any] = dict(request.query_params)
            has_body = request.method in ("POST", "PUT", "PATCH")
            content_type = request.headers.get("content-type", "")
            limit = self.config.api.max_request_bytes
            if has_body and not self._token(request, params) and content_type.startswith(FORM):
                # api_token in a form: read before anyone is known, so a stranger's is kept small
                try:
                    params.update(_parse_body(content_type, await _body(request, min(limit, TOKEN_FORM_BYTES))))
                except PayloadTooLarge:
                    raise Unauthorized(f"a form over {TOKEN_FORM_BYTES} bytes must send its token in the "
                                       "Authorization header") from None
                has_body = False
            caller = await self._caller(request, params)
            if has_body:
                params.update(_parse_body(content_type, await _body(request, limit)))
            if request.method == "POST" and str(params.get("_method", "")).upper() == "GET":
                method = "GET"
            else:
                method = request.method
            if not scope_allows(caller.scopes, method, request.url.path):
                raise Forbidden(f"this token's scopes do not allow {method} {request.url.path}")
            backend, caller = self.hop(caller, params)
            result = await self._route(backend, method, request.path_params, params, caller)
            return JSON(result)
        except ArchipelagoError as exc:
            return error(exc.status, str(exc))

    def hop(self, caller: Caller, params: dict[str, Any]) -> tuple[Backend, Caller]:
        """The backend to answer with and the caller as it is judged: a request a peer forwarded is
        answered from this cluster alone (one hop, never a loop), its caller marked as coming via it."""
        if FORWARDED_FOR not in params:
            return self.backend, caller
        return self.backend.this_cluster(), dataclasses.replace(caller, via=str(params[FORWARDED_FOR]))

    async def _route(self, backend: Backend, method: str, path: dict[str, str], params: dict[str, Any],
                     caller: Caller) -> Any:
        resource = path["resource"]
        uuid = path.get("uuid")
        action = path.get("action")
        if resource not in TYPES:
            raise NotFound(f"no such resource type {resource!r}")
        call = self._call
        if uuid == "current" and method == "GET" and resource in CURRENT:
            return await call(getattr(backend, CURRENT[resource]), caller)
        if method == "GET" and (listing := LISTINGS.get((resource, action or uuid or ""))):
            owner = uuid if action else params.get("uuid")  # `groups/{uuid}/contents` or `?uuid=`
            return await call(listing, backend, caller, owner, list_params(params))
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
            return await call(backend.get, caller, resource, uuid, _names(params, "select"),
                              _bool(params, "include_trash"))
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
        """Answered without a valid token too, as Arvados does (a peer's keepstore asks anonymously);
        the caller, when known, decides which gateways show where their data lies."""
        try:
            params: dict[str, Any] = dict(request.query_params)
            caller = None
            if self._token(request, params):
                with contextlib.suppress(Unauthorized):
                    caller = await self._caller(request, params)
            return JSON(await self._call(self.backend.keep_services, caller))
        except ArchipelagoError as exc:
            return error(exc.status, str(exc))

    async def event_stream(self, request: Request) -> Response:
        try:
            params = dict(request.query_params)
            caller = await self._caller(request, params)
            if not scope_allows(caller.scopes, "GET", request.url.path):
                raise Forbidden(f"this token's scopes do not allow GET {request.url.path}")
            if self.events is None:
                raise NotFound("this API process has no event stream")
            kinds = {k for k in params.get("kinds", "").split(",") if k} or None
            after = request.headers.get("last-event-id") or params.get("after")
            judge = partial(self._readable_changes, request, params)
            return events_stream(self.events, judge, kinds, int(after) if after and after.isdigit() else None)
        except ArchipelagoError as exc:
            return error(exc.status, str(exc))

    async def _readable_changes(self, request: Request, params: dict[str, Any], changes: list[Record]) -> list[Record]:
        """What this subscriber may hear of: its token checked again (a stream outlives no revocation
        or expiry), each object as its scopes would let it GET the object, then the Backend's rule."""
        caller = await self._caller(request, params)
        scoped = [c for c in changes if scope_allows(caller.scopes, "GET", f"/arvados/v1/{c['kind']}/{c['uuid']}")]
        return await self._call(self.backend.this_cluster().readable_changes, caller, scoped) if scoped else []

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
            *ResolverFeedHttp(self).routes(),  # a resolver's poll of this site (api/resolver_feed.py)
            *Ga4ghHttp(self).routes(),  # DRS, WES and the file-download endpoint (api/ga4gh.py)
            *CollectionFilesHttp(self).routes(),  # listings and files' segments by path (api/collection_files.py)
            *PublishedHttp(self).routes(),  # what containers serve (notebooks), for their user (api/notebook.py)
            Route("/arvados/v1/{resource}", self.dispatch, methods=methods),
            Route("/arvados/v1/{resource}/{uuid}", self.dispatch, methods=methods),
            Route("/arvados/v1/{resource}/{uuid}/{action}", self.dispatch, methods=methods),
            *web_routes(self.config, self.backend, self.events, self._call),  # the web UI at / (web/)
        ])


def create_app(config: ClusterConfig, backend: Backend, events: EventHub | None = None) -> Starlette:
    return ApiApp(config, backend, events).app()
