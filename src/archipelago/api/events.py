"""`GET /arvados/v1/events`: committed changes as server-sent events, so clients follow containers
and requests without polling. One event per object written:
`id: <seq>` and `data: {"kind", "uuid", "owner_uuid", "event_type", "seq"}`. `?kinds=a,b` narrows
the stream; `Last-Event-ID` (or `?after=`) replays what was missed, as far as the history goes.
Each subscriber hears only of the objects it may read: `judge` (the Backend's `readable_changes`,
after the token is checked again) decides, batch by batch, in order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.responses import StreamingResponse

from ..backend.interface import Record
from ..db.events import Event, EventHub
from ..errors import ArchipelagoError

KEEPALIVE_SECONDS = 15.0
BATCH = 500  # changes judged together: one decision (and at most a query or two) for a burst
Judge = Callable[[list[Record]], Awaitable[list[Record]]]


def stream(hub: EventHub, judge: Judge, kinds: set[str] | None, after: int | None) -> StreamingResponse:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()

    def deliver(event: Event) -> None:  # called from whichever thread committed: judged later, not here
        if kinds is None or event.kind in kinds:
            loop.call_soon_threadsafe(queue.put_nowait, event)

    unsubscribe = hub.subscribe(deliver, after)

    async def lines() -> AsyncIterator[bytes]:
        try:
            yield b": connected\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                batch = [event.as_dict()]
                while not queue.empty() and len(batch) < BATCH:
                    batch.append(queue.get_nowait().as_dict())
                try:
                    heard = await judge(batch)
                except ArchipelagoError as exc:  # the token was revoked or has expired: the stream ends
                    yield f": {exc}\n\n".encode()
                    return
                for change in heard:
                    yield f"id: {change['seq']}\ndata: {json.dumps(change)}\n\n".encode()
        finally:
            unsubscribe()

    return StreamingResponse(lines(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
