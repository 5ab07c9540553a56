"""The resolver polls each site on its own schedule from one asyncio loop: no thread per site, at
most `poll_concurrency` polls in flight (a semaphore), each site due again `poll_interval` after its
last poll ended (jittered, so a thousand sites polled at once drift apart). A poll reads the site's
registration feed since what the resolver has (`/_resolver/feed?after=N`, signed with the site's
key): an answer is a sign of life and brings the changes of a site that cannot push (firewalled);
no answer marks the site down at once (liveness.py)."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import time
from functools import partial
from typing import Any

import aiohttp
import orjson

from ..rpc import async_session
from .service import ResolverService
from .signing import sign

log = logging.getLogger("archipelago.resolver.poller")
FEED_PATH = "/_resolver/feed"
FEED_LIMIT = 5000
MAX_ANSWER = 32 << 20  # a feed's answer is read no further (a site, hostile or broken, sends what it likes)


class Poller:
    def __init__(self, service: ResolverService):
        self.service = service
        self.config = service.config
        self.polls = 0  # counters, for the benchmark and tests
        self.failures = 0

    async def run(self, stop: asyncio.Event) -> None:
        polled = [site for site in self.config.sites if self.config.windows(site).polled]
        now = time.monotonic()
        # spread over a whole interval from the start: a thousand sites polled in the same second would
        # come due together every interval after
        due = [(now + random.uniform(0, self.config.windows(s).poll_interval), s) for s in polled]
        heapq.heapify(due)
        gate = asyncio.Semaphore(self.config.poll_concurrency)
        tasks: set[asyncio.Task[None]] = set()
        async with async_session(self.config.poll_timeout, limit=self.config.poll_concurrency) as http:
            while not stop.is_set() and (due or tasks):
                if not due:
                    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    continue
                wait = due[0][0] - time.monotonic()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
                    continue
                _, site = heapq.heappop(due)
                await gate.acquire()
                task = asyncio.create_task(self._poll(http, site))
                tasks.add(task)
                task.add_done_callback(partial(self._done, site=site, gate=gate, due=due, tasks=tasks))
            for task in tasks:
                task.cancel()

    def _done(self, task: asyncio.Task[None], *, site: str, gate: asyncio.Semaphore, due: list[tuple[float, str]],
              tasks: set[asyncio.Task[None]]) -> None:
        gate.release()
        tasks.discard(task)
        interval = self.config.windows(site).poll_interval
        heapq.heappush(due, (time.monotonic() + interval * random.uniform(0.9, 1.1), site))

    async def _poll(self, http: aiohttp.ClientSession, site: str) -> None:
        settings = self.config.sites[site]
        target = f"{FEED_PATH}?after={self.service.last_seq.get(site, 0)}&limit={FEED_LIMIT}"
        self.polls += 1
        try:
            headers = sign(settings.key, site, "GET", target)
            async with http.get(settings.url + target, headers=headers, ssl=not settings.insecure) as r:
                body = bytearray()
                async for piece in r.content.iter_chunked(1 << 16):
                    body += piece
                    if len(body) > MAX_ANSWER:
                        raise RuntimeError(f"its feed answered more than {MAX_ANSWER} bytes")
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}: {body[:200].decode('utf-8', 'replace')}")
            feed: Any = orjson.loads(body)
            await asyncio.to_thread(self.service.polled, site, feed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure to answer is the site being down, for liveness
            self.failures += 1
            self.service.poll_failed(site, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
