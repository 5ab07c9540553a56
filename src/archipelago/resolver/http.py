"""The resolver's HTTP/1.1 server: small JSON requests and answers, nothing else.

Why not aiohttp: an answer costs the resolver about 40 µs of its own work, and aiohttp's request
and response machinery cost as much again (measured under `benchmarks/resolver.py`: 46 µs a request
for a handler that returns a constant). Here `httptools` (the C parser uvicorn uses, with its
request-smuggling checks) parses; one asyncio Protocol per connection keeps requests in order
(keep-alive and pipelining), answers always carry a Content-Length, and a handler that must wait
(a push, written by a thread) pauses reading from its connection until it has answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable
from http import HTTPStatus
from typing import Protocol, cast
from urllib.parse import parse_qsl, unquote

import httptools
import orjson

log = logging.getLogger("archipelago.resolver.http")
IDLE_SECONDS = 75.0  # a connection that sends nothing for this long is closed
MAX_HEAD = 64 << 10  # bytes of a request line and headers (httptools itself sets no limit)
REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


class Request:
    __slots__ = ("_query", "body", "headers", "keep_alive", "method", "target")

    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes, keep_alive: bool):
        self.method = method
        self.target = target  # the path and query as sent: what a signature covers
        self.headers = headers  # names in lower case
        self.body = body
        self.keep_alive = keep_alive
        self._query: dict[str, str] | None = None

    @property
    def path(self) -> str:
        return unquote(self.target.partition("?")[0])

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            self._query = dict(parse_qsl(self.target.partition("?")[2], keep_blank_values=True))
        return self._query


class Reply:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers


class App(Protocol):
    def __call__(self, request: Request) -> Reply | Awaitable[Reply]:
        """The answer to a whole request (its body read)."""

    def admit(self, request: Request) -> Reply | None:
        """A refusal judged on the request line and headers alone, before a byte of the body is read
        (the connection is then closed); None to read the body and answer."""


def _error(status: int, message: str) -> Reply:
    return Reply(status, orjson.dumps({"errors": [message]}))


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer):
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.waiting: deque[Request] = deque()  # parsed while an earlier request was being answered
        self.busy = False  # a handler is awaited: later requests wait, in order
        self.task: asyncio.Future[None] | None = None
        self.writable = True
        self.closing = False
        self.last_active = time.monotonic()
        self.refused: tuple[Request, Reply] | None = None  # a request that waits its turn, refused on its headers
        self._head_open = True  # the current request's line and headers are still arriving
        self._head_size = 0
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0

    # ------------------------------------------------------------ asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses, but are one
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        if self._head_open:
            self._head_size += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not served here")
        except httptools.HttpParserError:
            self._fail(400, "malformed HTTP request")
        if self._head_open and self._head_size > MAX_HEAD:
            self._fail(431, f"a request's line and headers are at most {MAX_HEAD} bytes")

    def pause_writing(self) -> None:  # the client reads its answers slower than it asks: stop reading
        self.writable = False
        self._pause()

    def resume_writing(self) -> None:
        self.writable = True
        self._resume()

    # ------------------------------------------------------------ httptools
    def on_message_begin(self) -> None:
        self._url, self._headers, self._body, self._size = b"", {}, [], 0
        self._head_open, self._head_size = True, 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._head_open = False
        length = self._headers.get("content-length", "0")
        if self.refused is not None:
            return
        if length.isdigit() and int(length) > self.server.max_body:
            self._fail(413, f"a request body is at most {self.server.max_body} bytes")
        elif (length != "0" or "transfer-encoding" in self._headers) and not self.closing:
            # a request with a body is judged on its headers first
            head = Request(self.parser.get_method().decode("ascii"), self._url.decode("latin-1"), self._headers,
                           b"", False)
            try:
                refusal = self.server.app.admit(head)
            except Exception:
                log.exception("%s %s", head.method, head.target[:200])
                refusal = _error(500, "internal error")
            if refusal is not None and (self.busy or self.waiting):
                # one that waits its turn: answered in order (by _finish), its body and what follows never read
                self.refused = (head, refusal)
                self._pause()
            elif refusal is not None:
                self._write(head, refusal)  # and closes: the body is never read
            elif self._headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # (curl waits a second for it)

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.server.max_body:  # chunked, with no length said first
            self._fail(413, f"a request body is at most {self.server.max_body} bytes")
        elif not self.closing and self.refused is None:
            self._body.append(body)

    def on_message_complete(self) -> None:
        self._head_open, self._head_size = True, 0
        if self.closing or self.refused is not None:
            return
        request = Request(self.parser.get_method().decode("ascii"), self._url.decode("latin-1"), self._headers,
                          b"".join(self._body), self.parser.should_keep_alive())
        if self.busy or self.waiting:
            self.waiting.append(request)
        else:
            self._handle(request)

    # ------------------------------------------------------------ answering
    def _handle(self, request: Request) -> None:
        try:
            result = self.server.app(request)
        except Exception:
            log.exception("%s %s", request.method, request.target[:200])
            result = _error(500, "internal error")
        if inspect.isawaitable(result):
            self.busy = True
            self._pause()
            self.task = asyncio.ensure_future(self._finish(request, result))
        else:
            self._write(request, result)

    async def _finish(self, request: Request, pending: Awaitable[Reply]) -> None:
        try:
            reply = await pending
        except Exception:
            log.exception("%s %s", request.method, request.target[:200])
            reply = _error(500, "internal error")
        self.busy = False
        self._write(request, reply)
        while self.waiting and not self.busy and not self.closing:
            self._handle(self.waiting.popleft())
        if self.refused is not None and not self.busy:
            self._write(*self.refused)  # and closes
        self._resume()

    def _write(self, request: Request, reply: Reply) -> None:
        if self.closing or self.transport is None:
            return
        lines = [b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                 % (reply.status, REASONS.get(reply.status, b"Unknown"), len(reply.body))]
        if reply.headers:
            lines += [f"{name}: {value}\r\n".encode("latin-1") for name, value in reply.headers.items()]
        if not request.keep_alive:
            lines.append(b"Connection: close\r\n")
        lines.append(b"\r\n")
        if request.method != "HEAD":
            lines.append(reply.body)
        self.transport.write(b"".join(lines))
        if not request.keep_alive:
            self._close()

    def _fail(self, status: int, message: str) -> None:
        """A request we will not read to its end: answer it and close the connection."""
        self._write(Request("", "", {}, b"", False), _error(status, message))  # not kept alive: closes

    def _close(self) -> None:
        self.closing = True
        self.waiting.clear()
        if self.transport is not None:
            self.transport.close()

    def _pause(self) -> None:
        if self.transport is not None and not self.closing and self.transport.is_reading():
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self.transport is not None and not self.closing and not self.busy and self.writable \
                and self.refused is None and not self.transport.is_reading():
            self.transport.resume_reading()


class HttpServer:
    def __init__(self, app: App, max_body: int):
        self.app = app
        self.max_body = max_body
        self.connections: set[_Connection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._sweeping: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port, reuse_address=True,
                                                backlog=1024)
        self._sweeping = asyncio.create_task(self._sweep())

    async def _sweep(self) -> None:
        """Close connections idle for IDLE_SECONDS (one pass every few seconds, nothing per request)."""
        while True:
            await asyncio.sleep(IDLE_SECONDS / 8)
            old = time.monotonic() - IDLE_SECONDS
            for connection in [c for c in self.connections if c.last_active < old and not c.busy]:
                connection._close()

    async def close(self) -> None:
        if self._sweeping is not None:
            self._sweeping.cancel()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection._close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
