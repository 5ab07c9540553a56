"""A site's pusher: a background task of `archi cluster up`, one per resolver. It sends the changes
the resolver has not acknowledged (registrations.py), at once when something changes here and every
`heartbeat_seconds` anyway (an empty push is the heartbeat), each push signed with the site's key.

A failed push is retried after a jittered exponential backoff ("full jitter": a random wait up to
base x 2^attempt, capped), so a thousand sites that come up in the same second, or all retry after a
resolver restart, spread out instead of arriving together again; a resolver that is overloaded says
503 and is backed off from the same way. A resolver that has less than the site thinks (a new
database) answers 409 with where it stands, and the pusher sends from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from ..rpc import async_session
from .registrations import Sessions, changes_after
from .signing import sign

log = logging.getLogger("archipelago.resolver.pusher")
PUSH_PATH = "/resolver/v1/push"


@dataclass
class Backoff:
    base: float = 0.2
    cap: float = 10.0
    attempt: int = 0

    def next(self) -> float:
        delay = random.uniform(0, min(self.cap, self.base * 2 ** self.attempt))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class Pusher:
    site: str
    key: str
    url: str
    sessions: Sessions
    heartbeat: float = 10.0
    batch: int = 5000
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    backoff: Backoff = field(default_factory=Backoff)
    acknowledged: int | None = None  # what the resolver has; None until it has said
    pushes: int = 0
    retries: int = 0

    async def _send(self, http: aiohttp.ClientSession, body: dict) -> tuple[int, dict]:
        data = orjson.dumps(body)
        headers = {**sign(self.key, self.site, "POST", PUSH_PATH, data), "Content-Type": "application/json"}
        async with http.post(self.url.rstrip("/") + PUSH_PATH, data=data, headers=headers) as response:
            raw = await response.read()
            try:
                answer = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError:
                answer = {"errors": [raw[:200].decode("utf-8", "replace")]}
            return response.status, answer if isinstance(answer, dict) else {}

    async def push_once(self, http: aiohttp.ClientSession) -> bool:
        """One push; True if the resolver has everything noted so far."""
        if self.acknowledged is None:
            body: dict = {"after": None, "to": 0}
        else:
            body = await asyncio.to_thread(changes_after, self.sessions, self.acknowledged, self.batch)
        status, answer = await self._send(http, body)
        self.pushes += 1
        if status == 409 and isinstance(answer.get("last_seq"), int):
            self.acknowledged = answer["last_seq"]
            return False
        if status != 200:
            raise RuntimeError(f"resolver {self.url}: HTTP {status}: {'; '.join(map(str, answer.get('errors', [])))}")
        self.acknowledged = int(answer["last_seq"])
        return body.get("after") is not None and not body.get("more")

    async def run(self, stop: asyncio.Event) -> None:
        async with async_session(30.0) as http:
            while not stop.is_set():
                try:
                    done = await self.push_once(http)
                    self.backoff.reset()
                except (aiohttp.ClientError, OSError, RuntimeError, TimeoutError) as exc:
                    self.retries += 1
                    delay = self.backoff.next()
                    log.info("push to %s failed (%s); again in %.1f s", self.url, exc, delay)
                    await self._sleep(stop, delay, wakeable=False)
                    continue
                if done:
                    await self._sleep(stop, self.heartbeat, wakeable=True)

    async def _sleep(self, stop: asyncio.Event, seconds: float, wakeable: bool) -> None:
        waits = [asyncio.ensure_future(stop.wait())] + ([asyncio.ensure_future(self.wake.wait())] if wakeable else [])
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await w
        if wakeable:
            self.wake.clear()


WATCHED = frozenset({"collections", "identifiers", "groups"})  # kinds whose writes may change a registration


def start_pushers(config: Any, local: Any) -> list[asyncio.Task[None]]:
    """Inside `archi cluster up`: one pusher per resolver of a site that pushes, woken by this
    process's own commits (writes through other API processes go with the next heartbeat). The
    tasks run until cancelled."""
    link = config.resolver
    if not (link.urls and link.key and link.push):
        return []
    pushers = [Pusher(config.cluster_id, link.key, url, local.db.session, link.heartbeat_seconds) for url in link.urls]
    loop = asyncio.get_running_loop()

    def heard(event: Any) -> None:
        if event.kind in WATCHED:
            for pusher in pushers:
                loop.call_soon_threadsafe(pusher.wake.set)

    local.db.events.subscribe(heard)
    never = asyncio.Event()
    return [asyncio.create_task(pusher.run(never), name=f"push to {pusher.url}") for pusher in pushers]
