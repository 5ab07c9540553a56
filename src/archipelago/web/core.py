"""What every page handler shares: the logged-in session (from the cookie, through the Backend's
own authentication), Backend calls in the API's threads, and the wrapper that turns a handler into
an endpoint — logged out: to the login page; a POST: from our own origin with its CSRF token; any
ArchipelagoError: an error page with its status."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from ..backend.interface import Backend, Caller
from ..config import ClusterConfig
from ..db.events import EventHub
from ..errors import ArchipelagoError, Forbidden, Unauthorized
from .federation import Federation
from .render import Renderer
from .session import CSRF_FIELD, CSRF_HEADER, Session, check_csrf, check_origin, cookie_name, csrf_for, read_form

log = logging.getLogger("archipelago.web")
T = TypeVar("T")
Call = Callable[..., Awaitable[Any]]
Handler = Callable[[Request, Session], Awaitable[Response]]


def needs_all_scope(caller: Caller) -> None:
    """The UI acts for its user in every way the API allows: a token limited to some requests
    would get more through it, so only a token with scope 'all' may log in."""
    if "all" not in caller.scopes:
        raise Forbidden(f"this token is limited to {', '.join(caller.scopes)}; the web UI needs a token with "
                        "scope 'all'")


class Web:
    def __init__(self, config: ClusterConfig, backend: Backend, events: EventHub | None, call: Call):
        self.config, self.backend, self.events, self.call = config, backend, events, call
        self.home = config.cluster_id
        self.federation = Federation(config, backend)
        login = config.login.login_cluster
        self.login_cluster = login if login not in (None, self.home) else None  # where this cluster's users log in
        self.issues_logins = login == self.home  # the login cluster: its users continue to the others
        targets = [remote.url for remote in config.remote_clusters.values()] if self.issues_logins else []
        self.render = Renderer(self.home, targets)

    async def caller_for(self, token: str) -> Caller:
        caller = self.backend.known_caller(token)
        return caller if caller is not None else await self.call(self.backend.authenticate, token)

    async def session(self, request: Request) -> Session | None:
        token = request.cookies.get(cookie_name(self.home))
        if not token:
            return None
        try:
            caller = await self.caller_for(token)
            needs_all_scope(caller)
            user = await self.call(self.backend.user_current, caller)
        except (Unauthorized, Forbidden):  # revoked, expired or narrowed since: logged out
            return None
        return Session(caller, user, csrf_for(self.config.collections.blob_signing_key, token))

    def page(self, handler: Handler, kind: str = "html") -> Callable[[Request], Awaitable[Response]]:
        """An endpoint for `handler`; kind "html" (pages and forms), "json" or "text" (what scripts fetch)."""

        async def endpoint(request: Request) -> Response:
            session: Session | None = None
            try:
                session = await self.session(request)
                if session is None:
                    if kind == "html" and request.method == "GET":
                        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                        return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
                    raise Unauthorized("not logged in (or the session's token is no longer valid): log in again")
                if request.method != "GET":
                    check_origin(request)
                    given = request.headers.get(CSRF_HEADER)
                    if given is None and request.headers.get("content-type", "").startswith("application/x-www"):
                        form = await read_form(request)
                        request.state.form = form
                        given = form.get(CSRF_FIELD)
                    check_csrf(session, given)
                return await handler(request, session)
            except ArchipelagoError as exc:
                if exc.status >= 500:
                    log.warning("web: %s %s: %s", request.method, request.url.path, exc)
                return self.failure(kind, exc, session)
            except Exception:  # a bug: logged with its stack; the page says so without details
                log.exception("web: %s %s failed", request.method, request.url.path)
                return self.failure(kind, ArchipelagoError("something went wrong on the server (it is logged there)"),
                                    session)

        return endpoint

    def failure(self, kind: str, exc: ArchipelagoError, session: Session | None) -> Response:
        status = exc.status if 400 <= exc.status < 600 else 500
        if kind == "json":
            return JSONResponse({"error": str(exc)}, status, headers=self.render.headers())
        if kind == "text":
            return PlainTextResponse(str(exc), status, headers=self.render.headers())
        return self.render.error(status, str(exc), **self.context(session))

    def context(self, session: Session | None, nav: str = "") -> dict[str, Any]:
        """What every page's frame needs: who is logged in, their CSRF token, the section."""
        if session is None:
            return {"user": None, "csrf": "", "nav": nav}
        return {"user": session.user, "csrf": session.csrf, "nav": nav}

    def html(self, template: str, session: Session | None, nav: str = "", status: int = 200,
             **context: Any) -> Response:
        return self.render.page(template, status, **self.context(session, nav), **context)

    def form(self, request: Request) -> dict[str, str]:
        return getattr(request.state, "form", {})
