"""keepstore: the HTTP block server (reference §4.1), on aiohttp.

aiohttp because it moves 64 MiB bodies over loopback about four times faster than the ASGI stack
(machine-notes §8), and this is the hot path. Block bytes are streamed in CHUNK pieces: md5 and
disk I/O run in worker threads (both release the GIL) overlapped with the socket, so memory per
request stays at a few chunks and throughput approaches the speed of md5 itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any, BinaryIO, TypeVar

from aiohttp import web

from ..config import ClusterConfig
from .errors import BlockNotFound, BlockTooLarge, CorruptBlock, HashMismatch, InvalidLocator, KeepError
from .locator import BLOCK_SIZE, EMPTY_HASH, Locator, LocatorError
from .metrics import FETCHED, SERVED
from .remote_blocks import CLUSTER_HEADER, RemoteBlocks
from .signing import SignatureError, SignatureExpired, sign_locator, verify_locator
from .store import BlockStore
from .volumes import BlockReader, Volume
from .volumes.base import fast_hasher

log = logging.getLogger(__name__)

CHUNK = 2 << 20
PULL_TOKEN = "keepstore-token-used-for-pulling-data-from-same-cluster"
RESIDENCY_REFRESH_SECONDS = 1.0
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, PUT, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Length, Content-Type, X-Keep-Desired-Replicas, "
    "X-Keep-Signature, X-Keep-Storage-Classes",
    "Access-Control-Expose-Headers": "X-Keep-Locator, X-Keep-Replicas-Stored, X-Keep-Storage-Classes-Confirmed",
    "Access-Control-Max-Age": "86400",
}
T = TypeVar("T")


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"errors": [message]}, status=status, headers=CORS_HEADERS)


def request_token(request: web.Request) -> str | None:
    """The API token: `Authorization: Bearer|OAuth2 <tok>`, or `?api_token=`."""
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme in ("Bearer", "OAuth2") and token.strip():
        return token.strip()
    return request.query.get("api_token") or None


@web.middleware
async def keep_errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    try:
        return await handler(request)
    except KeepError as exc:
        return error_response(exc.status, str(exc))
    except SignatureExpired as exc:
        return error_response(401, str(exc))
    except SignatureError as exc:
        return error_response(400, str(exc))
    except LocatorError as exc:
        return error_response(400, str(exc))


class _ReadCheck:
    """Verifies a block as it is read: against the volume's fast checksum when it keeps one
    (see BlockReader.fast_checksum), else against the md5 the block is named by."""

    def __init__(self, md5: str, fast: str | None):
        self.md5, self.fast = md5, fast
        self._hasher: Any = fast_hasher() if fast else hashlib.md5()

    def update(self, data: bytes | memoryview) -> None:
        self._hasher.update(data)

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()

    def matches(self) -> bool:
        return self._hasher.hexdigest() == (self.fast or self.md5)


class ClientGone(KeepError):
    status = 499


async def _body_batches(request: web.Request) -> AsyncIterator[list[bytes]]:
    """The body as lists of the pieces the socket delivered, about CHUNK bytes per list.

    Handing over lists rather than joined chunks spares a copy of the whole block.
    """
    batch: list[bytes] = []
    size = 0
    async for piece in request.content.iter_any():
        batch.append(piece)
        size += len(piece)
        if size >= CHUNK:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class Keepstore:
    def __init__(self, config: ClusterConfig, store: BlockStore,
                 restricted_blocks: Callable[[], set[str]] | None = None):
        self.config = config
        self.store = store
        # blocks under a residency policy, refreshed from the cluster database when there is one
        self._load_restricted = restricted_blocks
        self.restricted: set[str] = set()
        self.key = config.collections.blob_signing_key.encode()
        self.ttl = config.collections.blob_signing_ttl
        self.pull_queue: list[dict[str, Any]] = []
        self.remote = RemoteBlocks(config)
        self._relay_buffers: list[bytearray] = []  # CHUNK-sized, reused across relays
        self.served: Counter[str] = Counter()  # bytes served to each other cluster's keepstore
        self._pull_wakeup = asyncio.Event()
        self._background: list[asyncio.Task[None]] = []

    # ----------------------------------------------------------------- plumbing
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args))

    def _require_root(self, request: web.Request) -> None:
        token = request_token(request)
        if token is None:
            raise web.HTTPUnauthorized(text='{"errors": ["missing token"]}', content_type="application/json")
        if token != self.config.system_root_token:
            raise web.HTTPForbidden(
                text='{"errors": ["this endpoint needs the system root token"]}', content_type="application/json"
            )

    def _check_signature(self, request: web.Request, locator: Locator) -> None:
        if not self.config.collections.blob_signing:
            return
        token = request_token(request)
        if token is None:
            raise web.HTTPUnauthorized(
                text='{"errors": ["missing token: a signed locator and its token are required"]}',
                content_type="application/json",
            )
        verify_locator(locator, token, self.ttl, self.key)

    def _sign(self, md5: str, size: int, token: str | None) -> str:
        plain = f"{md5}+{size}"
        if token is None:
            return plain
        return sign_locator(plain, token, int(time.time()) + self.ttl, self.ttl, self.key)

    # ----------------------------------------------------------------- blocks
    async def get(self, request: web.Request) -> web.StreamResponse:
        raw = request.match_info["locator"].lstrip("/")
        locator = Locator.parse(raw, require_size=request.method == "GET" and not raw.startswith(EMPTY_HASH))
        if locator.hint("R") is not None and locator.signature is None:
            return await self._get_remote(request, locator)
        self._check_signature(request, locator)
        volume, reader = await self._run(self.store.open, locator.md5)
        headers = {**CORS_HEADERS, "Vary": "X-Keep-Signature", "Content-Type": "application/octet-stream"}
        if self._from_outside(request) and locator.md5 in self.restricted:
            reader.close()
            log.warning("residency: refused block %s to %s", locator.md5,
                        request.headers.get(CLUSTER_HEADER) or "a client of another cluster")
            raise web.HTTPForbidden(text=json.dumps({"errors": [
                f"block {locator.md5} belongs to data that stays on cluster {self.config.cluster_id} "
                "(residency policy 'cluster'): it cannot be read from outside that cluster"]}),
                content_type="application/json")
        if (reader_cluster := request.headers.get(CLUSTER_HEADER)) and request.method == "GET":
            self.served[reader_cluster] += reader.size
        if request.method == "HEAD":
            reader.close()
            headers["Content-Length"] = str(reader.size)
            return web.Response(headers=headers)
        try:
            check = _ReadCheck(locator.md5, await self._run(reader.fast_checksum))
            source = reader.file()
            if reader.size <= CHUNK:  # small: verified before the first byte goes out
                data = await self._run(reader.read, reader.size)
                check.update(data)
                await self._verify(volume, check)
                return web.Response(body=data, headers=headers)
            response = web.StreamResponse(headers=headers)
            response.content_length = reader.size
            await response.prepare(request)
            if source is not None and request.transport is not None:
                sent = await self._sendfile_verified(request, volume, reader.size, source, check)
            else:
                sent = await self._stream_verified(response, volume, reader, check)
            if sent:
                await response.write_eof()
            elif request.transport is not None:
                # a corrupt block whose headers are already out: cut the connection so that no
                # client ever sees a complete body
                request.transport.abort()
            return response
        finally:
            reader.close()

    def _from_outside(self, request: web.Request) -> bool:
        """Another cluster's keepstore (it says so), or a token another cluster issued (salted or not)."""
        if request.headers.get(CLUSTER_HEADER, self.config.cluster_id) != self.config.cluster_id:
            return True
        parts = (request_token(request) or "").split("/")
        return len(parts) >= 3 and parts[0] == "v2" and (len(parts[2]) == 40 or parts[1][:5] != self.config.cluster_id)

    async def _refresh_restricted(self) -> None:
        while True:
            try:
                self.restricted = await self._run(self._load_restricted)  # type: ignore[arg-type]
            except Exception as exc:
                log.error("could not refresh the residency block list: %s", exc)
            await asyncio.sleep(RESIDENCY_REFRESH_SECONDS)

    async def _get_remote(self, request: web.Request, locator: Locator) -> web.StreamResponse:
        """A block signed by another cluster: fetched from there for this caller (reference §8.1).
        With `X-Keep-Signature: local`, it is also stored here and `X-Keep-Locator` carries the
        local signature, so the caller can save a collection that references it (§8.2)."""
        token = request_token(request)
        if token is None:
            raise web.HTTPUnauthorized(text='{"errors": ["missing token"]}', content_type="application/json")
        headers = {**CORS_HEADERS, "Vary": "X-Keep-Signature", "Content-Type": "application/octet-stream"}
        store_locally = request.headers.get("X-Keep-Signature", "").split(",")[0].strip() == "local"
        if request.method == "GET" and not store_locally:
            if (cached := await self._run(self.remote.open_cached, locator)) is not None:
                return await self._send_cached(request, cached, headers)
            return await self._relay_remote(request, locator, token, headers)
        if store_locally and request.method == "HEAD" and await self._run(self._stored_here, locator.md5):
            # the block is here already: only the caller's right to it is checked over there
            size = await self._run(self.remote.confirm, locator, token)
            headers["X-Keep-Locator"] = self._sign(locator.md5, size, token)
            headers["Content-Length"] = str(size)
            return web.Response(headers=headers)
        data = await self._run(self.remote.read, locator, token)
        if store_locally:
            await self._run(self.store.put, locator.md5, data)
            headers["X-Keep-Locator"] = self._sign(locator.md5, len(data), token)
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return web.Response(headers=headers)
        # in slices: one 64 MiB write would be copied whole into the transport's buffer
        response = web.StreamResponse(headers=headers)
        response.content_length = len(data)
        await response.prepare(request)
        view = memoryview(data)
        for start in range(0, len(data), CHUNK):
            await response.write(view[start : start + CHUNK])
        await response.write_eof()
        return response

    async def _send_cached(self, request: web.Request, cached: BinaryIO,
                           headers: dict[str, str]) -> web.StreamResponse:
        """A remote block from the cache, by sendfile like a local one (verified when it was cached)."""
        with cached:
            response = web.StreamResponse(headers=headers)
            response.content_length = os.fstat(cached.fileno()).st_size
            await response.prepare(request)
            await asyncio.get_running_loop().sendfile(request.transport, cached, 0,  # type: ignore[arg-type]
                                                      response.content_length)
            await response.write_eof()
            return response

    def _stored_here(self, md5: str) -> bool:
        try:
            self.store.open(md5)[1].close()
            return True
        except KeepError:
            return False

    async def _relay_remote(self, request: web.Request, locator: Locator, token: str,
                            headers: dict[str, str]) -> web.StreamResponse:
        """First read of a remote block: each piece is received, hashed and written to the cache file
        by a worker thread, then sent from that file by the kernel (sendfile) while the next piece
        arrives. The last piece goes out only once the md5 checks out (else the connection is cut),
        and the cache file becomes visible only then."""
        cluster_id, body = await self._run(self.remote.open, locator, token)
        buffer = self._relay_buffers.pop() if self._relay_buffers else bytearray(CHUNK)
        cache = self.remote.writer(locator)
        committed = False
        pulling: asyncio.Future[int] | None = None
        try:
            size = int(body.headers.get("Content-Length", locator.size or 0))
            hasher = hashlib.md5()
            received = [0]

            def pull() -> int:
                view = memoryview(buffer)[: min(CHUNK, size - received[0])]
                n = body.readinto(view) if view else 0
                hasher.update(view[:n])
                cache.write(view[:n])
                received[0] += n
                return n

            response = web.StreamResponse(headers=headers)
            response.content_length = size
            await response.prepare(request)
            loop = asyncio.get_running_loop()
            sent = 0
            pulling = self._fork(pull)
            while sent < size:
                n = await pulling
                if n == 0 or (sent + n == size and hasher.hexdigest() != locator.md5):
                    log.error("relay of %s from %s failed its check: cutting the connection", locator.md5, cluster_id)
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                if sent + n < size:  # receive the next piece while the kernel sends this one
                    pulling = self._fork(pull)
                await loop.sendfile(request.transport, cache.file, sent, n)  # type: ignore[arg-type]
                sent += n
            await self._run(cache.commit)
            committed = True
            self.remote.count(cluster_id, size)
            await response.write_eof()
            return response
        finally:
            if pulling is not None and not pulling.done():  # it writes into the buffer and the cache file
                with contextlib.suppress(Exception):
                    await pulling
            if not committed:
                await self._run(cache.abort)
            self._relay_buffers.append(buffer)
            body.release_conn()

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus text: bytes this keepstore fetched from, and served to, each other cluster."""
        lines: list[str] = []
        for name, help_text, counts in ((FETCHED, "Bytes fetched from another cluster.", self.remote.fetched),
                                        (SERVED, "Bytes served to another cluster's keepstore.", self.served)):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
            lines += [f'{name}{{cluster="{c}"}} {n}' for c, n in sorted(counts.items())]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def _sendfile_verified(self, request: web.Request, volume: Volume, size: int, source: BinaryIO,
                                 check: _ReadCheck) -> bool:
        """The kernel sends each range from the page cache (sendfile) while a worker thread checks
        the next one in a reused buffer; the last range goes out only once the whole block checked."""
        view = memoryview(bytearray(CHUNK))
        fd = source.fileno()

        def check_range(offset: int) -> int:
            n = os.preadv(fd, [view[: min(CHUNK, size - offset)]], offset)
            check.update(view[:n])
            return n

        loop = asyncio.get_running_loop()
        offset = 0
        checking = self._fork(check_range, 0)
        while offset < size:
            n = await checking
            if n == 0 or not await self._checked_so_far(volume, check, offset + n, size):
                return False
            if offset + n < size:
                checking = self._fork(check_range, offset + n)  # runs while the kernel sends this range
            await loop.sendfile(request.transport, source, offset, n)  # type: ignore[arg-type]
            offset += n
        return True

    async def _stream_verified(self, response: web.StreamResponse, volume: Volume, reader: BlockReader,
                               check: _ReadCheck) -> bool:
        """Send the block while checking it (volumes without a local file, such as S3)."""
        size, received = reader.size, 0

        def next_chunk() -> bytes:
            chunk = reader.read(min(CHUNK, size - received))
            check.update(chunk)
            return chunk

        chunk = await self._run(next_chunk)
        while True:
            received += len(chunk)
            if not chunk or not await self._checked_so_far(volume, check, received, size):
                return False
            if received == size:
                await response.write(chunk)
                return True
            following = self._fork(next_chunk)  # already running in a thread while we send
            await response.write(chunk)
            chunk = await following

    async def _checked_so_far(self, volume: Volume, check: _ReadCheck, read: int, size: int) -> bool:
        """False if the block proved corrupt (or short); verification happens at the last chunk."""
        if read < size:
            return True
        try:
            await self._verify(volume, check)
            return True
        except CorruptBlock:
            return False

    async def _verify(self, volume: Volume, check: _ReadCheck) -> None:
        if check.matches():
            return
        if check.fast:  # the checksum or the data rotted: md5 decides which
            data = await self._run(volume.read_all, check.md5)
            if hashlib.md5(data).hexdigest() == check.md5:
                log.warning("block %s on %s: stale fast checksum, data fine; re-recorded", check.md5, volume.uuid)
                await self._run(volume.refresh_checksum, check.md5)
                return
        await self._run(self.store.report_corrupt, volume, check.md5, check.hexdigest())
        raise CorruptBlock(f"checksum mismatch in stored data for block {check.md5}")

    async def put(self, request: web.Request) -> web.Response:
        raw = request.match_info["locator"]
        locator = Locator.parse(raw, require_size=False)
        length = request.content_length
        if length is not None and length > BLOCK_SIZE:
            raise BlockTooLarge(f"block of {length} bytes exceeds the {BLOCK_SIZE}-byte limit")
        if length is not None and locator.size is not None and locator.size != length:
            raise HashMismatch(f"Content-Length {length} does not match the locator size {locator.size}")
        header = request.headers.get("X-Keep-Storage-Classes", "")
        classes = [c.strip() for c in header.split(",") if c.strip()] or None
        txn = await self._run(self.store.begin_put, locator.md5, classes)
        try:
            received = 0
            pending: list[asyncio.Future[None]] = []
            async for batch in _body_batches(request):
                if pending:  # the previous batch's hash and write, which ran while this one arrived
                    await asyncio.gather(*pending)
                received += sum(map(len, batch))
                if received > BLOCK_SIZE:
                    raise BlockTooLarge(f"block larger than {BLOCK_SIZE} bytes")
                pending = [self._fork(txn.hash_pieces, batch), self._fork(txn.write_pieces, batch)]
            await asyncio.gather(*pending)
            if length is not None and received != length:
                raise ClientGone(f"client went away after {received} of {length} bytes")
            result = await self._run(txn.finish)
        except (asyncio.IncompleteReadError, ConnectionError):
            await self._run(txn.abort)
            raise ClientGone("client went away before sending the whole block") from None
        except BaseException:
            await self._run(txn.abort)
            raise
        signed = self._sign(locator.md5, txn.size, request_token(request))
        return web.Response(
            text=signed + "\n",
            headers={
                **CORS_HEADERS,
                "X-Keep-Replicas-Stored": str(result.replicas),
                "X-Keep-Storage-Classes-Confirmed": result.classes_header,
            },
        )

    def _fork(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Start fn in a worker thread now (a coroutine would only start at the next await)."""
        return asyncio.get_running_loop().run_in_executor(None, partial(fn, *args))

    # ----------------------------------------------------------------- admin
    async def index(self, request: web.Request) -> web.Response:
        self._require_root(request)
        prefix = request.match_info.get("prefix", "")
        volumes = self.store.volumes
        if "uuid" in request.match_info:
            volumes = [self.store.by_uuid(request.match_info["uuid"])]

        def lines() -> str:
            out = [f"{e.md5}+{e.size} {e.mtime_ns}\n" for v in volumes for e in v.index(prefix)]
            return "".join(out) + "\n"

        return web.Response(text=await self._run(lines), content_type="text/plain")

    async def mounts(self, request: web.Request) -> web.Response:
        self._require_root(request)
        return web.json_response(
            [
                {
                    "uuid": v.uuid,
                    "device_id": v.device_id,
                    "allow_write": not v.read_only,
                    "allow_trash": not v.read_only,
                    "replication": v.replication,
                    "storage_classes": {c: True for c in sorted(v.storage_classes)},
                }
                for v in self.store.volumes
            ]
        )

    async def _json_list(self, request: web.Request) -> list[dict[str, Any]]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InvalidLocator("request body must be a JSON list") from None
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise InvalidLocator("request body must be a JSON list of objects")
        return body

    async def trash(self, request: web.Request) -> web.Response:
        """Trash blocks keep-balance found unreferenced, only if unchanged and older than the TTL."""
        self._require_root(request)
        items = await self._json_list(request)
        now = time.time()
        trashed = refused = 0
        for item in items:
            locator = Locator.parse(str(item.get("locator", "")))
            volumes = [self.store.by_uuid(item["mount_uuid"])] if item.get("mount_uuid") else self.store.volumes
            for volume in volumes:
                mtime = await self._run(volume.mtime_ns, locator.md5)
                if mtime is None or volume.read_only:
                    continue
                if mtime != item.get("block_mtime") or mtime / 1e9 > now - self.ttl:
                    refused += 1  # rewritten since, or young enough that a client may still reference it
                    continue
                await self._run(volume.trash, locator.md5, now + self.config.collections.blob_trash_lifetime)
                trashed += 1
        return web.json_response({"trashed": trashed, "refused": refused})

    async def untrash(self, request: web.Request) -> web.Response:
        self._require_root(request)
        locator = Locator.parse(request.match_info["locator"], require_size=False)
        restored = 0
        for volume in self.store.volumes:
            if not volume.read_only and await self._run(volume.untrash, locator.md5):
                restored += 1
        if not restored:
            raise BlockNotFound(f"block {locator.md5} is not in the trash")
        return web.json_response({"untrashed": restored})

    async def pull(self, request: web.Request) -> web.Response:
        """Replace the pull list: blocks this keepstore should copy from the named servers."""
        self._require_root(request)
        items = await self._json_list(request)
        for item in items:
            Locator.parse(str(item.get("locator", "")))
            if not isinstance(item.get("servers"), list):
                raise InvalidLocator("each pull request needs a 'servers' list")
        self.pull_queue = items
        self._pull_wakeup.set()
        return web.json_response({"queued": len(items)})

    async def options(self, request: web.Request) -> web.Response:
        return web.Response(headers=CORS_HEADERS)

    # ----------------------------------------------------------------- background work
    async def _pull_worker(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            while True:
                await self._pull_wakeup.wait()
                self._pull_wakeup.clear()
                while self.pull_queue:
                    item = self.pull_queue.pop(0)
                    await self._pull_one(session, item)

    async def _pull_one(self, session: Any, item: dict[str, Any]) -> None:
        locator = Locator.parse(item["locator"])
        signed = self._sign(locator.md5, locator.size or 0, PULL_TOKEN)
        for server in item["servers"]:
            try:
                async with session.get(
                    f"{server.rstrip('/')}/{signed}", headers={"Authorization": f"Bearer {PULL_TOKEN}"}
                ) as resp:
                    if resp.status != 200:
                        continue
                    data = await resp.read()
                if hashlib.md5(data).hexdigest() != locator.md5:
                    continue
                await self._run(self.store.put, locator.md5, data)
                log.info("pulled %s from %s", locator, server)
                return
            except Exception as exc:
                log.warning("pull of %s from %s failed: %s", locator, server, exc)

    async def _trash_emptier(self) -> None:
        while True:
            for volume in self.store.volumes:
                if not volume.read_only:
                    with contextlib.suppress(KeepError):
                        deleted = await self._run(volume.empty_trash, time.time())
                        if deleted:
                            log.info("deleted %d expired trashed blocks from %s", deleted, volume.uuid)
            await asyncio.sleep(self.config.collections.blob_trash_check_interval)

    async def _start_background(self, app: web.Application) -> None:
        self._pull_wakeup = asyncio.Event()
        self._background = [asyncio.create_task(self._pull_worker())]
        if self.config.collections.blob_trash:
            self._background.append(asyncio.create_task(self._trash_emptier()))
        if self._load_restricted is not None:
            self._background.append(asyncio.create_task(self._refresh_restricted()))

    async def _stop_background(self, app: web.Application) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[keep_errors], client_max_size=BLOCK_SIZE + 1)
        app.router.add_route("GET", "/index", self.index)
        app.router.add_route("GET", r"/index/{prefix:[0-9a-f]{0,32}}", self.index)
        app.router.add_route("GET", "/mounts", self.mounts)
        app.router.add_route("GET", "/metrics", self.metrics)
        app.router.add_route("GET", "/mounts/{uuid}/blocks", self.index)
        app.router.add_route("GET", r"/mounts/{uuid}/blocks/{prefix:[0-9a-f]{0,32}}", self.index)
        app.router.add_route("PUT", "/trash", self.trash)
        app.router.add_route("PUT", "/pull", self.pull)
        app.router.add_route("PUT", "/untrash/{locator}", self.untrash)
        app.router.add_route("GET", r"/{locator:/?[0-9a-f]{32}[^/]*}", self.get)
        app.router.add_route("HEAD", r"/{locator:/?[0-9a-f]{32}[^/]*}", self.get)
        app.router.add_route("PUT", r"/{locator:[0-9a-f]{32}[^/]*}", self.put)
        app.router.add_route("OPTIONS", "/{tail:.*}", self.options)
        app.on_startup.append(self._start_background)
        app.on_cleanup.append(self._stop_background)
        return app


def create_app(config: ClusterConfig, store: BlockStore,
               restricted_blocks: Callable[[], set[str]] | None = None) -> web.Application:
    return Keepstore(config, store, restricted_blocks).app()


class ServerThread:
    """An aiohttp app served on loopback from a background thread (tests, the demo, benchmarks)."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0):
        self._app, self._host, self._port = app, host, port
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def __enter__(self) -> ServerThread:
        import threading

        started = threading.Event()

        async def start() -> None:
            self._runner = web.AppRunner(self._app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self._host, self._port)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://{self._host}:{port}"
            started.set()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(start())
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True, name="keepstore")
        self._thread.start()
        if not started.wait(30):
            raise RuntimeError("server did not start within 30 s")
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


def serve(config: ClusterConfig, host: str | None = None, port: int | None = None,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Run keepstore in the foreground until interrupted."""
    app = create_app(config, BlockStore.from_config(config))
    host = host or config.keepstore.host
    port = config.keepstore.port if port is None else port

    async def announce(_: web.Application) -> None:
        if on_ready:
            on_ready(f"http://{host}:{port}")

    app.on_startup.append(announce)
    web.run_app(app, host=host, port=port, print=None, access_log=None, handle_signals=True)
