"""The web UI's routes, served by the API server at `/` (api/app.py adds them after its own):
logging in and out, static files, and the pages of data_pages, run_pages and site_pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..backend.interface import Backend
from ..config import ClusterConfig
from ..db.events import EventHub
from ..errors import ArchipelagoError, BadRequest, Unauthorized
from .core import Call, Web, needs_all_scope
from .data_pages import DataPages
from .notebook_pages import NotebookPages
from .render import STATIC, STATIC_TYPES
from .run_pages import RunPages
from .session import (
    Session,
    check_origin,
    clear_token_cookie,
    read_form,
    safe_next,
    set_token_cookie,
)
from .site_pages import SitePages
from .upload_pages import UploadPages

LOGIN_HANDOFF_HOURS = 12  # a token the login cluster makes for another cluster's UI lives this long


class Login:
    def __init__(self, web: Web):
        self.web = web

    def _origin(self, url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def handoff_target(self, return_to: str | None) -> tuple[str, str] | None:
        """(cluster, origin) of the federation member a login cluster's user continues to, or None;
        anything else is refused (a token is never sent to a site outside the federation)."""
        if not return_to or not self.web.issues_logins:
            return None
        origin = self._origin(return_to)
        for cluster, remote in self.web.config.remote_clusters.items():
            if self._origin(remote.url) == origin:
                return cluster, origin
        raise BadRequest(f"{return_to!r} is not a cluster of this federation: no login is handed to it")

    async def form(self, request: Request) -> Response:
        web = self.web
        try:
            target = self.handoff_target(request.query_params.get("return_to"))
            session = await web.session(request)
        except ArchipelagoError as exc:
            return web.failure("html", exc, None)
        next_path = safe_next(request.query_params.get("next"))
        if session is not None and target is None:
            return RedirectResponse(next_path, 303)
        login_at = None
        if web.login_cluster is not None:
            here = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
            login_at = (web.login_cluster, f"{web.federation.url(web.login_cluster)}/login?return_to={quote(here)}")
        return web.html("login.html", session, target=target, next=next_path, login_at=login_at,
                        return_to=request.query_params.get("return_to", ""))

    async def submit(self, request: Request) -> Response:
        web = self.web
        also = (self._origin(web.federation.url(web.login_cluster)),) if web.login_cluster else ()
        try:
            check_origin(request, also)
            form = await read_form(request)
            token = form.get("token", "").strip()
            if not token:
                raise BadRequest("paste an API token (v2/…) to log in")
            try:
                caller = await web.caller_for(token)
            except Unauthorized:
                raise Unauthorized("this token is not valid on this cluster (wrong, revoked or expired)") from None
            needs_all_scope(caller)
            return_to = form.get("return_to") or None
            target = self.handoff_target(return_to)
        except ArchipelagoError as exc:
            return web.failure("html", exc, None)
        destination = f"/login?return_to={quote(return_to or '')}" if target else safe_next(form.get("next"))
        response = RedirectResponse(destination, 303)
        set_token_cookie(response, web.home, token)
        return response

    async def handoff(self, request: Request, session: Session) -> Response:
        """At the login cluster: a token of this user's for the cluster they continue to, sent there
        by a form (posted by the browser: the token never appears in a URL)."""
        target = self.handoff_target(web_form(request).get("return_to"))
        if target is None:
            raise BadRequest("no cluster to continue to")
        expires = (datetime.now(UTC) + timedelta(hours=LOGIN_HANDOFF_HOURS)).isoformat()
        record = await self.web.call(self.web.backend.create, session.caller, "api_client_authorizations",
                                     {"expires_at": expires, "scopes": ["all"]})
        token = f"v2/{record['uuid']}/{record['api_token']}"
        return self.web.html("handoff.html", session, cluster=target[0], action=f"{target[1]}/login", token=token)

    async def logout(self, request: Request, session: Session) -> Response:
        response = RedirectResponse("/login", 303)
        clear_token_cookie(response, self.web.home)
        return response


def web_form(request: Request) -> dict[str, Any]:
    return getattr(request.state, "form", {})


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    path = STATIC / name
    content_type = STATIC_TYPES.get(path.suffix)
    if "/" in name or name.startswith(".") or content_type is None or not path.is_file():
        return Response("no such file", 404, media_type="text/plain")
    return Response(path.read_bytes(), media_type=content_type,
                    headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})


def web_routes(config: ClusterConfig, backend: Backend, events: EventHub | None, call: Call) -> list[BaseRoute]:
    web = Web(config, backend, events, call)
    login = Login(web)

    async def index(request: Request) -> Response:
        session = await web.session(request)
        return RedirectResponse("/data" if session else "/login", 303)

    routes: list[BaseRoute] = [
        Route("/", index),
        Route("/login", login.form, methods=["GET"]),
        Route("/login", login.submit, methods=["POST"]),
        Route("/login/handoff", web.page(login.handoff), methods=["POST"]),
        Route("/logout", web.page(login.logout), methods=["POST"]),
        Route("/static/{name}", static),
    ]
    for pages in (DataPages(web), UploadPages(web), RunPages(web), SitePages(web), NotebookPages(web)):
        routes += pages.routes()
    return routes
