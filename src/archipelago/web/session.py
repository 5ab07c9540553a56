"""Who is logged in to the web UI, and that a form was sent by our own pages.

The token lives in a cookie of this cluster's own name (clusters on one host share cookies across
ports), HttpOnly (no script reads it), Secure and SameSite=Strict. Every state-changing request
carries a CSRF token derived from the session's token with the cluster's signing key (so every API
process of the cluster agrees without shared state) and, when the browser says where it comes
from, must come from this origin: pages of another port of the same host are same-site, so the
cookie alone proves nothing."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from ..backend.interface import Caller
from ..errors import BadRequest, Forbidden, PayloadTooLarge

FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 << 10
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Session:
    caller: Caller
    user: dict[str, Any]
    csrf: str

    @property
    def token(self) -> str:
        return self.caller.token


def cookie_name(cluster_id: str) -> str:
    return f"archi_session_{cluster_id}"


def csrf_for(key: str, token: str) -> str:
    return hmac.new(key.encode(), b"archipelago web csrf\0" + token.encode(), hashlib.sha256).hexdigest()[:40]


def origin_of(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def check_origin(request: Request, also: tuple[str, ...] = ()) -> None:
    """A state-changing request must come from our own pages (or one of `also`, for the login form
    a login cluster sends back): the browser's Origin and Sec-Fetch-Site headers say where from."""
    origin = request.headers.get("origin")
    if origin is not None and origin not in (origin_of(request), *also):
        raise Forbidden(f"a form from {origin} cannot act on this cluster: forms are accepted from "
                        f"{origin_of(request)} only")
    fetch_site = request.headers.get("sec-fetch-site")
    if origin is None and fetch_site not in (None, "same-origin", "none"):
        raise Forbidden("a form from another site cannot act on this cluster")


def check_csrf(session: Session, given: str | None) -> None:
    if not given or not hmac.compare_digest(given, session.csrf):
        raise Forbidden("this form has expired or did not come from this site (CSRF token missing or wrong): "
                        "reload the page and try again")


async def read_form(request: Request) -> dict[str, str]:
    """A URL-encoded form (the only kind our pages send), at most MAX_FORM_BYTES."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise BadRequest(f"a form must be sent as {FORM}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLarge(f"a form is at most {MAX_FORM_BYTES} bytes")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"unreadable form: {exc}") from None


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a path of this site only (never `//host` or a URL)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or any(
            ord(c) < 32 for c in value):
        return "/"
    return value


def set_token_cookie(response: Response, cluster_id: str, token: str) -> None:
    response.set_cookie(cookie_name(cluster_id), token, httponly=True, secure=True, samesite="strict", path="/")


def clear_token_cookie(response: Response, cluster_id: str) -> None:
    response.delete_cookie(cookie_name(cluster_id), httponly=True, secure=True, samesite="strict", path="/")
