"""The upload endpoints the collection page's script calls (upload.js), and making a collection."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import BadRequest, PayloadTooLarge
from ..ids import UUID_RE
from .core import Web
from .listing import keep_client
from .session import Session
from .upload import MAX_PIECE, add_file, new_collection, store_piece


def collection_uuid(text: str) -> str:
    if UUID_RE.fullmatch(text) and text[6:11] == "4zz18":
        return text
    raise BadRequest(f"{text!r} is not a collection UUID")


async def body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"at most {limit} bytes at a time")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"at most {limit} bytes at a time")
        chunks.append(chunk)
    return b"".join(chunks)


class UploadPages:
    def __init__(self, web: Web):
        self.web = web

    def routes(self) -> list[BaseRoute]:
        page = self.web.page
        return [
            Route("/collections/{uuid}/blocks", page(self.piece, kind="json"), methods=["POST"]),
            Route("/collections/{uuid}/files", page(self.finish, kind="json"), methods=["POST"]),
            Route("/collections", page(self.create), methods=["POST"]),
        ]

    async def piece(self, request: Request, session: Session) -> Response:
        uuid = collection_uuid(request.path_params["uuid"])
        if uuid[:5] != self.web.home:
            raise BadRequest(f"{uuid} is on cluster {uuid[:5]}: upload through that cluster's pages")
        await self.web.call(self.web.backend.get, session.caller, "collections", uuid, ["uuid"])  # 404 if unreadable
        data = await body(request, MAX_PIECE)
        services = await self.web.call(self.web.backend.keep_services, session.caller)
        locator = await self.web.call(store_piece, keep_client(services["items"], session.token), data)
        return JSONResponse({"locator": locator, "size": len(data)}, headers=self.web.render.headers())

    async def finish(self, request: Request, session: Session) -> Response:
        uuid = collection_uuid(request.path_params["uuid"])
        try:
            sent = orjson.loads(await body(request, 16 << 20))
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"not JSON: {exc}") from None
        if not isinstance(sent, dict):
            raise BadRequest("send a JSON object: {path, size, locators}")
        record = await self.web.call(add_file, self.web.federation, session.caller, uuid, sent.get("path"),
                                     sent.get("locators"), sent.get("size"))
        return JSONResponse({"uuid": record["uuid"], "portable_data_hash": record.get("portable_data_hash")},
                            headers=self.web.render.headers())

    async def create(self, request: Request, session: Session) -> Response:
        form = self.web.form(request)
        owner = form.get("owner") or session.caller.user_uuid
        if not UUID_RE.fullmatch(owner):
            raise BadRequest(f"{owner!r} is not a project or user UUID")
        record = await self.web.call(new_collection, self.web.federation, session.caller, owner, form.get("name", ""))
        return RedirectResponse(f"/collections/{record['uuid']}", 303)
