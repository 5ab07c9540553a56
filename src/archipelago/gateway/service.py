"""The gateway service: answers `GET`/`HEAD /<locator>` like a keepstore, reading the block's range
of the external object that holds it (the block map is in the cluster database), and never serving
bytes that do not hash to the locator: an object changed underneath gives 502 naming it and the
collections affected, and its blocks are marked stale. `POST /register` reads objects once to map
their blocks and returns the manifest, signed for the caller, for them to save as a collection."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import mmap
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from ..backend.interface import Caller
from ..config import ClusterConfig, GatewayConfig
from ..db.models import GatewayBlock
from ..errors import ArchipelagoError, BadGateway
from ..formats.locator import BLOCK_SIZE, Locator
from ..formats.signing import sign_manifest
from ..keep.cache import BlockCache
from ..keepstore.http import BLOCK_HEADERS, CHUNK, keep_errors, request_token, run, send_block
from ..keepstore.remote_blocks import CLUSTER_HEADER
from ..keepstore.service import BlockAccess
from ..keepstore.volumes.base import fast_hasher
from ..keepstore.workers import refresh_restricted
from .blockmap import BlockMap, Sessions, as_block
from .register import block_row, register
from .stores import MOVED_PREFIX, ObjectChanged, store_for

log = logging.getLogger("archipelago.gateway")
Registrant = Callable[[str | None, str], Caller]


class Gateway:
    """`registrant(token, gateway uuid)` is the cluster's decision (LocalBackend.gateway_registrant):
    the caller who may register data through this gateway and store blocks moved to it, or 401/403."""

    def __init__(self, config: ClusterConfig, gateway: GatewayConfig, sessions: Sessions,
                 restricted_blocks: Callable[[], set[str]] = set, *, registrant: Registrant):
        self.config, self.gateway, self.sessions = config, gateway, sessions
        self._restricted_blocks = restricted_blocks
        self._registrant = registrant
        # verified blocks: read twice, fetched once
        self.cache: BlockCache[bytearray | mmap.mmap] = BlockCache(gateway.cache_mib << 20)
        self.uuid = str(gateway.uuid)
        self.blocks = BlockMap(sessions, self.uuid)  # the block map, and which collections read a block
        self.store = store_for(gateway)
        # more reads at once than cores cost more CPU per block, here and in the store's server
        # (benchmarks/gateway.py: 4 at once on 2 cores, 2.4 CPU-s of the S3 server's per GiB, 0.8 with 2)
        self._store_reads = asyncio.Semaphore(gateway.store_reads or os.cpu_count() or 1)
        # keepstore's rules: signatures, residency (all of this gateway's blocks, under a policy), signing
        self.access = BlockAccess(config, all_stay=gateway.residency is not None)

    # ---------------------------------------------------------------- reads
    async def get(self, request: web.Request) -> web.StreamResponse:
        locator = Locator.parse(request.match_info["locator"], require_size=request.method == "GET")
        token = request_token(request)
        self.access.check_signature(locator, token)
        self.access.guard_residency(locator.md5, request.headers.get(CLUSTER_HEADER), token)
        row = await run(self.blocks.row, locator.stripped)
        if row.stale:  # HEAD too: a block it would refuse to serve is not a block it holds
            raise await run(self._refuse, row, "it changed since it was registered")
        if request.method == "HEAD":
            return web.Response(headers={**BLOCK_HEADERS, "Content-Length": str(row.length)})
        if (cached := self.cache.get(locator.md5)) is not None:
            return await send_block(request, cached)
        return await self._send(request, row)

    async def _residency(self, app: web.Application) -> AsyncIterator[None]:
        """The blocks under a residency policy, kept fresh as keepstore keeps its own."""
        refreshing = asyncio.create_task(refresh_restricted(self.access, self._restricted_blocks))
        yield
        refreshing.cancel()

    async def _send(self, request: web.Request, row: GatewayBlock) -> web.StreamResponse:
        """The block read whole from its object range and checked as it arrives — against the fast
        checksum taken with its md5 when it was registered (md5 decides when they disagree, or when
        there is none) — and sent only if it is the block: a changed object is a 502 before any
        byte, and its blocks are marked stale. (A client reading several blocks at once keeps the
        store, the checking and the socket busy together.)"""
        try:
            async with self._store_reads:
                data = await run(self._read_verified, row)
        except ObjectChanged:
            raise await run(self._refuse, row, "it changed since it was registered") from None
        if data is None:
            raise await run(self._refuse, row, "its bytes no longer match the block")
        self.cache.put(row.locator.split("+")[0], data)
        return await send_block(request, data)

    def _read_verified(self, row: GatewayBlock) -> bytearray | mmap.mmap | None:
        block, received = block_buffer(row.length), 0
        check: Any = fast_hasher() if row.checksum else hashlib.md5()
        view = memoryview(block)
        with self.store.open(row.object, row.version, row.offset, row.length) as source:
            while received < row.length:
                n = source.readinto(view[received:received + CHUNK])
                if not n:
                    return None  # shorter than registered
                check.update(view[received:received + n])
                received += n
        md5 = row.locator.split("+")[0]
        if check.hexdigest() == (row.checksum or md5):
            return block
        if row.checksum and hashlib.md5(block).hexdigest() == md5:  # the recorded checksum was wrong, not the data
            log.warning("gateway %s: block %s had a wrong checksum on record; its md5 matches; re-recorded",
                        self.uuid, row.locator)
            self.blocks.record([{**as_block(row), "checksum": fast_hasher(view).hexdigest()}])
            return block
        return None

    def _refuse(self, row: GatewayBlock, why: str) -> BadGateway:
        affected = self.blocks.mark_stale(row)
        message = (f"gateway {self.uuid}: object {row.object!r} cannot serve block {row.locator}: {why}; "
                   f"collections affected: {', '.join(affected) or 'none found'}")
        log.error(message)
        return BadGateway(message)

    # ---------------------------------------------------------------- blocks moved here
    async def put(self, request: web.Request) -> web.Response:
        """`PUT /<md5>`: a block moved to this gateway's store (`archi keep move --to`), kept as an
        object of its own (`archipelago-blocks/<md5>`); answers the locator, signed, with this
        gateway's hint, like a keepstore does."""
        token = (await run(self._registrant, request_token(request), self.uuid)).token  # before the body is read
        md5 = request.match_info["locator"][:32]
        data = await request.read()
        name = f"{MOVED_PREFIX}{md5}"
        row = await run(block_row, self.uuid, name, 0, data, "")  # md5 and checksum, once, off the event loop
        if not row["locator"].startswith(md5):
            raise ArchipelagoError(f"the body does not hash to {md5}", 422)
        row["version"] = await run(self.store.write, name, data)
        await run(self.blocks.record, [row])
        signed = self.access.sign(md5, len(data), token, f"+K@{self.uuid}")
        return web.Response(text=signed + "\n", headers=BLOCK_HEADERS)

    # ---------------------------------------------------------------- registration
    async def register(self, request: web.Request) -> web.StreamResponse:
        """Streams its progress as JSON lines (`{"total"}`, then `{"done": bytes}` as objects are
        read), then `{"manifest_text", "objects", "bytes"}`, the manifest signed for the caller."""
        token = (await run(self._registrant, request_token(request), self.uuid)).token  # the manifest is signed for it
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("path", ""), str):
            raise ArchipelagoError("the body is {\"path\": \"<under this gateway's root>\"}", 400)
        path = body.get("path", "")
        objects = await run(lambda: list(self.store.objects(path)))  # listed once; its errors before streaming
        total = sum(o.size for o in objects)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[bytes] = asyncio.Queue()
        await response.write(json.dumps({"total": total}).encode() + b"\n")

        def progress(size: int) -> None:  # from the reading threads
            loop.call_soon_threadsafe(lines.put_nowait, json.dumps({"done": size}).encode() + b"\n")

        work = asyncio.ensure_future(run(register, self.store, self.uuid, path, progress, self.blocks.known, objects,
                                         self.blocks.record))  # each object recorded once read: a retry resumes
        while not work.done() or not lines.empty():
            try:
                await response.write(await asyncio.wait_for(lines.get(), 0.2))
            except TimeoutError:
                continue
        try:
            registered = work.result()
            ttl = self.access.ttl
            signed = sign_manifest(registered.manifest_text, token, int(time.time()) + ttl, ttl, self.access.key)
            final = {"manifest_text": signed, "objects": registered.objects, "bytes": registered.bytes}
        except Exception as exc:  # the answer has begun: the failure goes in its last line
            log.error("gateway %s: registering %r failed: %s", self.uuid, path, exc)
            final = {"errors": [str(exc)], "status": getattr(exc, "status", 502)}
        await response.write(json.dumps(final).encode() + b"\n")
        await response.write_eof()
        return response

    def app(self) -> web.Application:
        app = web.Application(middlewares=[keep_errors], client_max_size=BLOCK_SIZE + 1)
        app.cleanup_ctx.append(self._residency)
        app.router.add_route("POST", "/register", self.register)
        app.router.add_route("PUT", r"/{locator:[0-9a-f]{32}[^/]*}", self.put)
        app.router.add_route("GET", r"/{locator:[0-9a-f]{32}[^/]*}", self.get)
        app.router.add_route("HEAD", r"/{locator:[0-9a-f]{32}[^/]*}", self.get)
        return app


def block_buffer(size: int) -> bytearray | mmap.mmap:
    """Fresh memory for a block about to be read (and then kept in the cache): on Linux mapped
    with all its pages at once (MAP_POPULATE), where a bytearray's are zeroed and faulted in one
    4 KiB page at a time (on the benchmark's machine 0.45 CPU-s per GiB read, mapped at once 0.27)."""
    if size and hasattr(mmap, "MAP_POPULATE"):
        return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
    return bytearray(size)
