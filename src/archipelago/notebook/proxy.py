"""Forwarding one HTTP request or WebSocket to a container's published socket (host side). The
caller has been authenticated and authorized by the API layer; this only moves bytes, without
following anything the container could have planted (executor/published.py opens the socket)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from ..executor.published import open_socket
from ..rpc import async_session

# not passed on: hop-by-hop headers, and the credentials meant for the proxy itself
DROPPED = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                     "transfer-encoding", "upgrade", "host", "authorization", "cookie", "content-length"})
TOKEN_COOKIE = "archi_proxy_token"


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    kept = {k: v for k, v in headers.items() if k.lower() not in DROPPED and not k.lower().startswith("sec-websocket")}
    return {**kept, "Host": "localhost"}


def answer_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.items() if k.lower() not in DROPPED]


@dataclass
class Upstream:
    """One connection to a container's socket (a descriptor held open until closed)."""

    fd: int
    session: aiohttp.ClientSession

    @classmethod
    def open(cls, work_root: Path | None, container_uuid: str) -> Upstream:
        fd = open_socket(work_root, container_uuid)
        return cls(fd, async_session(None, connect_timeout=10, unix_socket=f"/proc/self/fd/{fd}", decompress=False))

    async def close(self) -> None:
        await self.session.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)

    async def request(self, method: str, path_and_query: str, headers: Mapping[str, str],
                      body: bytes) -> tuple[int, list[tuple[str, str]], AsyncIterator[bytes]]:
        response = await self.session.request(method, f"http://localhost{path_and_query}",
                                              headers=forwarded_headers(headers), data=body, allow_redirects=False)

        async def stream() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.content.iter_any():
                    yield chunk
            finally:
                response.release()
                await self.close()

        return response.status, answer_headers(response.headers), stream()

    async def websocket(self, path_and_query: str, headers: Mapping[str, str],
                        protocols: list[str]) -> aiohttp.ClientWebSocketResponse:
        return await self.session.ws_connect(f"http://localhost{path_and_query}", headers=forwarded_headers(headers),
                                             protocols=protocols, autoping=True, max_msg_size=0)


async def pump_websocket(client: object, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Both directions of a WebSocket until either side closes (client: a Starlette WebSocket)."""
    from starlette.websockets import WebSocket, WebSocketDisconnect

    assert isinstance(client, WebSocket)

    async def down() -> None:
        async for message in upstream:
            if message.type == aiohttp.WSMsgType.TEXT:
                await client.send_text(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await client.send_bytes(message.data)
            else:
                break

    async def up() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await client.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") is not None:
                    await upstream.send_str(message["text"])
                elif message.get("bytes") is not None:
                    await upstream.send_bytes(message["bytes"])

    tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    await upstream.close()
