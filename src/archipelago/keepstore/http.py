"""What every keepstore handler shares: CORS headers, the error body, the caller's token, and
running blocking work (md5, disk, S3) in worker threads."""

from __future__ import annotations

import asyncio
import mmap
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from aiohttp import web

from ..errors import ArchipelagoError
from ..formats.tokens import from_authorization_header
from ..keep.errors import ERROR_KIND_HEADER, KeepError

T = TypeVar("T")
CHUNK = 2 << 20  # block bytes move in pieces of this size
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, PUT, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Length, Content-Type, X-Keep-Desired-Replicas, "
    "X-Keep-Signature, X-Keep-Storage-Classes",
    "Access-Control-Expose-Headers": "X-Keep-Locator, X-Keep-Replicas-Stored, X-Keep-Storage-Classes-Confirmed",
    "Access-Control-Max-Age": "86400",
}
BLOCK_HEADERS = {**CORS_HEADERS, "Vary": "X-Keep-Signature", "Content-Type": "application/octet-stream"}


def error_response(status: int, message: str, kind: str = "") -> web.Response:
    """Arvados' error body; `kind` tells a client which KeepError it was when it must act on it (a
    corrupt copy is not asked again), so that no client has to read the message."""
    headers = {**CORS_HEADERS, ERROR_KIND_HEADER: kind} if kind else CORS_HEADERS
    return web.json_response({"errors": [message]}, status=status, headers=headers)


def error_for(exc: ArchipelagoError) -> web.Response:
    """The error answer for `exc`: its status, its message, and its kind if it is a KeepError."""
    return error_response(exc.status, str(exc), exc.error_kind if isinstance(exc, KeepError) else "")


def request_token(request: web.Request) -> str | None:
    """The API token: `Authorization: Bearer|OAuth2 <tok>`, or `?api_token=`."""
    return from_authorization_header(request.headers.get("Authorization")) or request.query.get("api_token") or None


@web.middleware
async def keep_errors(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except ArchipelagoError as exc:
        return error_for(exc)


async def run(fn: Callable[..., T], *args: Any) -> T:
    """Blocking work in a worker thread."""
    return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args))


def fork(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Start fn in a worker thread now (a coroutine would only start at the next await)."""
    return asyncio.get_running_loop().run_in_executor(None, partial(fn, *args))


async def send_block(request: web.Request, data: bytes | bytearray | mmap.mmap,
                     headers: dict[str, str] = BLOCK_HEADERS) -> web.StreamResponse:
    """A block held in memory, written in CHUNK pieces: one 64 MiB body would be copied whole into
    the transport's buffer, and aiohttp sends it several times slower than the same bytes in pieces."""
    response = web.StreamResponse(headers=headers)
    response.content_length = len(data)
    await response.prepare(request)
    view = memoryview(data)
    for start in range(0, len(data), CHUNK):
        await response.write(view[start:start + CHUNK])
    await response.write_eof()
    return response

