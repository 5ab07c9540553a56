"""`GET /_resolver/feed?after=N&limit=M`: this site's registration changes after N, for a resolver's
poll (a site that cannot push is still known; resolver/poller.py). Parse, authenticate (the request
must be signed with this site's resolver key, and not replayed), call, render. Without a key
configured the feed does not exist (404)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import ArchipelagoError, BadRequest, NotFound
from ..resolver.registrations import changes_after
from ..resolver.signing import NonceMemory, verify

if TYPE_CHECKING:
    from .app import ApiApp

MAX_LIMIT = 5000


class ResolverFeedHttp:
    def __init__(self, api: ApiApp):
        self.api = api
        local = api.backend.this_cluster()
        self.sessions = getattr(getattr(local, "db", None), "session", None)
        self.nonces = NonceMemory()

    async def feed(self, request: Request) -> Response:
        from .app import JSON, error

        try:
            key = self.api.config.resolver.key
            if key is None or self.sessions is None:
                raise NotFound("this cluster has no resolver key: nothing to poll")
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            signed = verify({self.api.config.cluster_id: key}, request.headers, "GET", target, b"")
            self.nonces.check(signed)
            try:
                after = int(request.query_params.get("after", "0"))
                limit = min(int(request.query_params.get("limit", str(MAX_LIMIT))), MAX_LIMIT)
            except ValueError:
                raise BadRequest("after and limit are whole numbers") from None
            if after < 0 or limit < 1:
                raise BadRequest("after >= 0 and limit >= 1")
            return JSON(await asyncio.to_thread(changes_after, self.sessions, after, limit))
        except ArchipelagoError as exc:
            return error(exc.status, str(exc))

    def routes(self) -> list[Route]:
        return [Route("/_resolver/feed", self.feed)]
