"""`GET /arvados/v1/events`: committed changes as server-sent events, so clients follow containers
and requests without polling. One event per object written:
`id: <seq>` and `data: {"kind", "uuid", "owner_uuid", "event_type", "seq"}`. `?kinds=a,b` narrows
the stream; `Last-Event-ID` (or `?after=`) replays what was missed, as far as the history goes.
A non-admin hears of objects they own, and of containers (whose records they may or may not read)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

from ..backend.interface import Caller
from ..db.events import Event, EventHub

KEEPALIVE_SECONDS = 15.0
PUBLIC_KINDS = frozenset({"containers"})  # owned by the system user; their UUIDs are all a client sees


def visible(event: Event, caller: Caller) -> bool:
    return caller.is_admin or event.owner_uuid == caller.user_uuid or event.kind in PUBLIC_KINDS


def stream(hub: EventHub, caller: Caller, kinds: set[str] | None, after: int | None) -> StreamingResponse:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()

    def deliver(event: Event) -> None:  # called from whichever thread committed
        if (kinds is None or event.kind in kinds) and visible(event, caller):
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
                yield f"id: {event.seq}\ndata: {json.dumps(event.as_dict())}\n\n".encode()
        finally:
            unsubscribe()

    return StreamingResponse(lines(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
