"""An rpc Transport that calls an API application in this process instead of over a socket: the
same ASGI messages uvicorn would send, so whole federations run in milliseconds in the contract
tests."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from archipelago.rpc import RawResponse


class AsgiTransport:
    def __init__(self, app: Any):
        self.app = app

    def request(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> RawResponse:
        return asyncio.run(self._call(method, url, body or b"", headers))

    async def _call(self, method: str, url: str, body: bytes, headers: Mapping[str, str]) -> RawResponse:
        parts = urlsplit(url)
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": parts.scheme, "path": unquote(parts.path), "raw_path": parts.path.encode(),
            "query_string": parts.query.encode(), "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "server": (parts.hostname or "test", parts.port or 443), "client": ("127.0.0.1", 40000),
        }
        delivered = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                await asyncio.Event().wait()  # the client never disconnects
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return RawResponse(status, b"".join(chunks))
