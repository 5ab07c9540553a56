"""Pages as HTML: one Jinja2 environment (autoescape on: every name, property and file name a
tenant chose is text, never markup), the filters the templates share, and the headers every page
carries (a Content-Security-Policy that allows no inline script or style)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, Response

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml"}
CLUSTER_COLOURS = 8  # app.css defines .c0 … .c7


def size(n: Any) -> str:
    """Bytes for people: 1 kB is 1000 bytes, as the CLI prints them."""
    if n is None:
        return "—"
    n = int(n)
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def when(value: Any) -> str:
    """An API timestamp as `2026-12-05 12:33:00 UTC`."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def epoch(value: Any) -> str:
    """Unix seconds (the resolver's times) as `2026-12-05 12:33:00 UTC`."""
    if value in (None, ""):
        return "—"
    try:
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError):
        return str(value)


def seconds(value: Any) -> str:
    if value is None:
        return "—"
    value = float(value)
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def path_url(path: str) -> str:
    """A file path as URL path segments (each percent-encoded; the slashes kept)."""
    return "/".join(quote(part, safe="") for part in path.split("/"))


def _static_versions() -> dict[str, str]:
    """Each static file's content hash, appended to its URL so that a new release is fetched anew."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12] for p in STATIC.iterdir() if p.is_file()}


class Renderer:
    def __init__(self, cluster_id: str, form_targets: list[str] | None = None):
        self.cluster_id = cluster_id
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                               trim_blocks=True, lstrip_blocks=True)
        versions = _static_versions()
        self.env.globals.update(cluster_id=cluster_id,
                                static=lambda name: f"/static/{name}?v={versions.get(name, '0')}")
        self.env.filters.update(size=size, when=when, epoch=epoch, seconds=seconds, path_url=path_url,
                                q=lambda s: quote(str(s), safe=""))
        # forms post here only, and to the clusters a login may continue to (LoginCluster)
        targets = " ".join(["'self'", *(form_targets or [])])
        self.csp = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
                    f"form-action {targets}; frame-ancestors 'none'; base-uri 'none'")

    def headers(self) -> dict[str, str]:
        return {"Content-Security-Policy": self.csp, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin", "Cache-Control": "no-store", "X-Frame-Options": "DENY"}

    def html(self, template: str, status: int = 200, **context: Any) -> str:
        context.setdefault("user", None)
        context.setdefault("csrf", "")
        context.setdefault("nav", "")
        return self.env.get_template(template).render(**context)

    def page(self, template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> Response:
        return HTMLResponse(self.html(template, **context), status, headers={**self.headers(), **(headers or {})})

    def error(self, status: int, message: str, **context: Any) -> Response:
        titles = {400: "Bad request", 401: "Not logged in", 403: "Not allowed", 404: "Not found", 405: "Not allowed",
                  413: "Too large", 416: "Range not satisfiable", 422: "Not accepted", 502: "A cluster answered badly",
                  503: "Unavailable"}
        return self.page("error.html", status, code=status, title=titles.get(status, "Error"), message=message,
                         **context)
