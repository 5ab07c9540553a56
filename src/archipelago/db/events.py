"""What changed, as it commits: every unit of work that creates, updates or deletes an object
publishes (kind, uuid, owner) once its transaction commits. The API streams these to clients
(`GET /arvados/v1/events`) so a dispatcher or a workflow runner sees a container finish at once
instead of polling for it. In-process only: with several API processes a client hears the changes
made through the one it is connected to, and polls as well (a slow safety net, not the signal)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session

HISTORY = 10_000  # events kept for clients that reconnect with Last-Event-ID


@dataclass(frozen=True)
class Event:
    seq: int
    kind: str  # the resource: "containers", "container_requests", ...
    uuid: str
    owner_uuid: str | None
    event_type: str  # "create" | "update" | "delete"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Subscriber = Callable[[Event], None]


class EventHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._recent: deque[Event] = deque(maxlen=HISTORY)
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber, after: int | None = None) -> Callable[[], None]:
        """Call `subscriber` for each event from now on (and those after `after`, if still kept);
        returns the function that unsubscribes."""
        with self._lock:
            backlog = [e for e in self._recent if after is not None and e.seq > after]
            self._subscribers.append(subscriber)
        for event in backlog:
            subscriber(event)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, changes: list[tuple[str, str, str | None, str]]) -> None:
        with self._lock:
            events = []
            for kind, uuid, owner, event_type in changes:
                self._seq += 1
                events.append(Event(self._seq, kind, uuid, owner, event_type))
            self._recent.extend(events)
            subscribers = list(self._subscribers)
        for event in events:
            for subscriber in subscribers:
                subscriber(event)


def collect_changes(session: Session, flush_context: Any) -> None:
    """An after_flush hook: note the objects this flush wrote, for publishing after the commit."""
    noted = session.info.setdefault("events", {})
    for objects, event_type in ((session.new, "create"), (session.dirty, "update"), (session.deleted, "delete")):
        for obj in objects:
            uuid = getattr(obj, "uuid", None)
            if uuid is not None:
                key = (obj.__tablename__, uuid)
                noted[key] = (obj.__tablename__, uuid, getattr(obj, "owner_uuid", None),
                              noted[key][3] if key in noted and noted[key][3] == "create" else event_type)
