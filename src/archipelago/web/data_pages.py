"""The data pages: the user's projects and collections across the federation, a project, a
collection's files (sizes, where their blocks live, previews), search, and sharing."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..backend.interface import Caller, Record
from ..errors import BadRequest, NotFound
from ..ga4gh.served import attachment
from ..ids import PDH_RE, UUID_RE
from .core import Web
from .data import Data, identifier_page
from .delegate import ThroughApi
from .listing import (
    TEXT_PREVIEW_BYTES,
    clean_path,
    file_segments,
    image_type,
    is_directory,
    keep_client,
    listing,
    preview_kind,
    read_head,
    table_preview,
    text_preview,
    tree_of,
)
from .render import path_url
from .resolving import Resolving
from .session import Session


def collection_key(text: str) -> str:
    if PDH_RE.fullmatch(text) or UUID_RE.fullmatch(text):
        return text
    raise BadRequest(f"{text!r} is neither a collection UUID nor a portable data hash")


def project_key(text: str) -> str:
    if UUID_RE.fullmatch(text):
        return text
    raise BadRequest(f"{text!r} is not a project UUID")


class DataPages:
    def __init__(self, web: Web):
        self.web = web
        self.data = Data(web.federation)
        self.resolving = Resolving(web.config)

    def routes(self) -> list[BaseRoute]:
        page = self.web.page
        return [
            Route("/data", page(self.home)),
            Route("/projects/{uuid}", page(self.project)),
            Route("/collections/{key}", page(self.collection)),
            Route("/collections/{key}/files/{path:path}", page(self.file)),
            Route("/collections/{key}/preview/{path:path}", page(self.image, kind="text")),
            Route("/collections/{key}/download/{path:path}", page(self.download, kind="text")),
            Route("/search", page(self.search)),
            Route("/share", page(self.share), methods=["POST"]),
        ]

    async def home(self, request: Request, session: Session) -> Response:
        found = await self.web.call(self.data.home, session.caller)
        return self.web.html("data.html", session, "data", mine=found["mine"], shared=found["shared"],
                             colour=self.web.federation.colour)

    async def project(self, request: Request, session: Session) -> Response:
        uuid = project_key(request.path_params["uuid"])
        project, contents = await self.web.call(self.data.project, session.caller, uuid)
        chain = await self.web.call(self.data.owners, session.caller, project.get("owner_uuid", ""))
        return self.web.html("project.html", session, "data", project=project, contents=contents, chain=chain,
                             residency=self.data.residency(project, chain), cluster=uuid[:5],
                             colour=self.web.federation.colour, **await self._sharing(session.caller, project))

    async def _sharing(self, caller: Caller, record: Record) -> dict[str, Any]:
        """Who the object is shared with, as the caller may see it; the form to share it only for its
        managers (a reader is not shown the cluster's users to pick from)."""
        uuid = record["uuid"]
        shares = await self.web.call(self.data.shares, caller, uuid)
        manages = await self.web.call(self.data.manages, caller, record, shares)
        people = await self.web.call(self.data.people, caller) if manages else []
        names = {p["uuid"]: p.get("username") or p.get("name") or p["uuid"] for p in people}
        return {"shares": shares, "people": people, "names": names, "manages": manages}

    async def _collection(self, caller: Caller, key: str) -> dict[str, Any]:
        record = await self.web.call(self.web.backend.get, caller, "collections", key)
        chain = await self.web.call(self.data.owners, caller, record.get("owner_uuid", ""))
        cluster = key[:5] if UUID_RE.fullmatch(key) else _held_by(record, self.web.home)
        return {"record": record, "chain": chain, "residency": self.data.residency(record, chain), "cluster": cluster,
                "tree": tree_of(record.get("manifest_text") or "")}

    async def collection(self, request: Request, session: Session) -> Response:
        key = collection_key(request.path_params["key"])
        directory = clean_path(request.query_params.get("dir", ""))
        found = await self._collection(session.caller, key)
        gateways = await self.web.call(self.data.gateways, session.caller)
        entries = listing(found["tree"], directory, self.web.home, gateways)
        sharing = await self._sharing(session.caller, found["record"]) if UUID_RE.fullmatch(key) else {
            "shares": None, "people": [], "names": {}, "manages": False}
        crumbs = _crumbs(directory)
        return self.web.html("collection.html", session, "data", key=key, directory=directory, entries=entries,
                             crumbs=crumbs, colour=self.web.federation.colour, home=self.web.home,
                             upload=UUID_RE.fullmatch(key) is not None and key[:5] == self.web.home,
                             **found, **sharing)

    async def file(self, request: Request, session: Session) -> Response:
        key = collection_key(request.path_params["key"])
        path = clean_path(request.path_params["path"])
        found = await self._collection(session.caller, key)
        tree = found["tree"]
        if is_directory(tree, path):
            return RedirectResponse(f"/collections/{key}?dir={path_url(path)}", 303)
        segments = file_segments(tree, path)
        kind = preview_kind(path)
        text = rows = None
        truncated = False
        if kind in ("text", "table"):
            services = await self.web.call(self.web.backend.keep_services, session.caller)
            keep = keep_client(services["items"], session.token)
            data, truncated = await self.web.call(read_head, keep, segments, TEXT_PREVIEW_BYTES)
            if kind == "text":
                text = text_preview(data, truncated)
            else:
                rows = table_preview(data, truncated, path)
        gateways = await self.web.call(self.data.gateways, session.caller)
        entry = next(e for e in listing(tree, path.rpartition("/")[0], self.web.home, gateways) if e.path == path)
        return self.web.html("file.html", session, "data", key=key, path=path, entry=entry, kind=kind, text=text,
                             rows=rows, truncated=truncated, crumbs=_crumbs(path.rpartition("/")[0]),
                             colour=self.web.federation.colour, home=self.web.home, **found)

    async def download(self, request: Request, session: Session) -> Response:
        """The file, as an attachment, through the API's file-download endpoint (byte ranges)."""
        key = collection_key(request.path_params["key"])
        path = clean_path(request.path_params["path"])
        if not path:
            raise BadRequest("name a file to download")
        headers = {**self.web.render.headers(), "Content-Disposition": attachment(path.rsplit("/", 1)[-1]),
                   "Content-Type": "application/octet-stream", "Content-Security-Policy": "default-src 'none'; sandbox"}
        return ThroughApi(f"/arvados/v1/collections/{key}/files/{path}", session.token, headers)

    async def image(self, request: Request, session: Session) -> Response:
        """A small image for its preview: only image types, never SVG (it may hold script)."""
        key = collection_key(request.path_params["key"])
        path = clean_path(request.path_params["path"])
        media = image_type(path)
        if media is None:
            raise NotFound(f"{path} is not an image this page previews (PNG, JPEG, GIF, WebP)")
        headers = {**self.web.render.headers(), "Content-Type": media, "Content-Disposition": "inline",
                   "Content-Security-Policy": "default-src 'none'; sandbox"}
        return ThroughApi(f"/arvados/v1/collections/{key}/files/{path}", session.token, headers)

    async def search(self, request: Request, session: Session) -> Response:
        query = request.query_params.get("q", "").strip()
        if not query:
            return self.web.html("search.html", session, "data", query="", results=[], resolved=None,
                                 colour=self.web.federation.colour)
        if (target := identifier_page(query)) is not None:
            return RedirectResponse(target, 303)
        results = await self.web.call(self.data.search, session.caller, query)
        resolved = await self.web.call(self.resolving.resolve, query)
        return self.web.html("search.html", session, "data", query=query, results=results, resolved=resolved,
                             colour=self.web.federation.colour)

    async def share(self, request: Request, session: Session) -> Response:
        form = self.web.form(request)
        uuid = form.get("object", "")
        await self.web.call(self.data.share, session.caller, uuid, form.get("who", ""), form.get("level", ""))
        page = "/projects/" if UUID_RE.fullmatch(uuid) and uuid[6:11] == "j7d0g" else "/collections/"
        return RedirectResponse(f"{page}{uuid}#sharing", 303)


def _held_by(record: dict[str, Any], home: str) -> str:
    """The cluster a collection found by content came from (its blocks' +R hints say), else home."""
    text = record.get("manifest_text") or ""
    marker = text.find("+R")
    return text[marker + 2:marker + 7] if marker >= 0 else home


def _crumbs(directory: str) -> list[tuple[str, str]]:
    """(name, path) of each directory from the top down to `directory`."""
    parts = directory.split("/") if directory else []
    return [(part, "/".join(parts[:n + 1])) for n, part in enumerate(parts)]
