"""HTTP for services containers publish (notebooks): `/arvados/v1/container_requests/{uuid}/proxy/…`
(HTTP and WebSocket) forwarded to the container's socket — parse, authenticate, authorize, forward.

Only the user the container runs as may use it: their token in `Authorization: Bearer`, or handed
over once as `?token=` (the answer is a redirect that sets a cookie for the proxy path alone:
HttpOnly, SameSite=Lax so another site cannot make the browser send it with a POST). Pages of another
origin are refused (403) whatever they carry: another port of the same host, or a sibling host, is the
same *site*, so the Lax cookie goes with their requests and WebSockets; the lab then sees no Origin
(it would compare it with the Host the proxy gives it and refuse its own pages). A stranger gets
401, another user (even one who may read the request) 404 or 403, a container not running 503."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from ..backend.interface import Caller
from ..errors import ArchipelagoError, BadRequest, Forbidden, Unauthorized, Unavailable
from ..formats.tokens import from_authorization_header
from ..ids import UUID_RE
from ..notebook.proxy import TOKEN_COOKIE, Upstream, pump_websocket
from ..notebook.session import proxy_prefix

if TYPE_CHECKING:
    from .app import ApiApp

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def from_own_pages(connection: HTTPConnection) -> None:
    """403 unless the browser says the request comes from this origin (or says nothing: not a page's)."""
    origin = connection.headers.get("origin")
    scheme = {"ws": "http", "wss": "https"}.get(connection.url.scheme, connection.url.scheme)
    own = f"{scheme}://{connection.headers.get('host', connection.url.netloc)}"
    if origin is not None and origin != own:
        raise Forbidden(f"a page of {origin[:100]} cannot use a notebook served at {own}: only its own pages may")


def without_origin(connection: HTTPConnection) -> dict[str, str]:
    return {name: value for name, value in connection.headers.items() if name.lower() != "origin"}


class PublishedHttp:
    def __init__(self, api: ApiApp):
        self.api = api
        self.work_root = api.config.containers.work_dir

    def _token(self, connection: HTTPConnection) -> tuple[str | None, bool]:
        """(token, came in the query)."""
        if token := from_authorization_header(connection.headers.get("authorization")):
            return token, False
        if token := connection.query_params.get("token"):
            return token, True
        return connection.cookies.get(TOKEN_COOKIE), False

    async def _authorized(self, connection: HTTPConnection, token: str | None) -> str:
        """The container's UUID, if the caller is the user it runs as and it is running."""
        from .app import scope_allows

        from_own_pages(connection)
        uuid = connection.path_params["uuid"]
        if not UUID_RE.fullmatch(uuid):
            raise BadRequest(f"{uuid!r} is not a container request UUID")
        rest = connection.path_params.get("path", "")
        if any(part in (".", "..") for part in rest.split("/")):
            raise BadRequest("a proxied path has no '.' or '..' components")
        if not token:
            raise Unauthorized("no API token: send 'Authorization: Bearer <token>', or open the URL once with "
                               "?token=<token>")
        backend = self.api.backend
        known = backend.known_caller(token)
        caller: Caller = known if known is not None else await self.api._call(backend.authenticate, token)
        if not scope_allows(caller.scopes, "GET", f"/arvados/v1/container_requests/{uuid}"):
            raise Forbidden(f"this token's scopes do not allow GET /arvados/v1/container_requests/{uuid}")
        request = await self.api._call(backend.get, caller, "container_requests", uuid)
        if not request.get("container_uuid"):
            raise Unavailable(f"{uuid} has no container yet (state {request['state']})")
        container = await self.api._call(backend.get, caller, "containers", request["container_uuid"])
        if container.get("runtime_user_uuid") != caller.user_uuid:
            raise Forbidden(f"only the user {uuid}'s container runs as may use what it serves")
        if container["state"] != "Running":
            raise Unavailable(f"{uuid}'s container is {container['state']}, not Running")
        return str(container["uuid"])

    @staticmethod
    def _upstream_path(connection: HTTPConnection) -> str:
        """The path as the client sent it (the service decodes its own names), without our token."""
        raw = connection.scope.get("raw_path") or connection.url.path.encode()
        query = [(k, v) for k, v in connection.query_params.multi_items() if k != "token"]
        return raw.decode("latin-1") + (f"?{urlencode(query)}" if query else "")

    async def http(self, request: Request) -> Response:
        from .app import error

        try:
            token, in_query = self._token(request)
            container_uuid = await self._authorized(request, token)
            if in_query and token:  # hand over to a cookie; the token leaves the address bar and history
                response = RedirectResponse(self._upstream_path(request), status_code=303)
                response.set_cookie(TOKEN_COOKIE, token, path=proxy_prefix(request.path_params["uuid"]),
                                    httponly=True, samesite="lax", secure=request.url.scheme == "https")
                return response
            from .app import _body

            body = await _body(request, self.api.config.api.max_request_bytes)
            upstream = Upstream.open(self.work_root, container_uuid)
            try:
                status, headers, stream = await upstream.request(request.method, self._upstream_path(request),
                                                                 without_origin(request), body)
            except Exception:
                await upstream.close()
                raise
            proxied = StreamingResponse(stream, status)
            for key, value in headers:
                proxied.headers.append(key, value)
            return proxied
        except ArchipelagoError as exc:
            return error(exc.status, str(exc))
        except OSError as exc:  # aiohttp's connection errors are OSErrors
            return error(502, f"the container's service did not answer: {exc}")

    async def websocket(self, websocket: WebSocket) -> None:
        try:
            token, _ = self._token(websocket)
            container_uuid = await self._authorized(websocket, token)
        except ArchipelagoError as exc:
            await websocket.close(code=4000 + exc.status, reason=str(exc)[:120])
            return
        upstream = Upstream.open(self.work_root, container_uuid)
        try:
            protocols = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
            socket = await upstream.websocket(self._upstream_path(websocket), without_origin(websocket), protocols)
            await websocket.accept(subprotocol=socket.protocol)
            await pump_websocket(websocket, socket)
        except (OSError, ArchipelagoError) as exc:
            await websocket.close(code=1011, reason=str(exc)[:120])
        finally:
            await upstream.close()

    def routes(self) -> list[Any]:
        path = "/arvados/v1/container_requests/{uuid}/proxy/{path:path}"
        return [Route(path, self.http, methods=METHODS), WebSocketRoute(path, self.websocket)]
