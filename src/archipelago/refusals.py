"""Residency refusals as they happen in this process (the API server and the keepstore of `archi
cluster up` share one): when, what and who asked, the latest kept in memory for the web UI's data
movement page. The log has every one of them (logger archipelago.residency)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

KEPT = 1000


@dataclass(frozen=True)
class Refusal:
    at: float  # unix seconds
    what: str  # "collection <uuid or PDH>", "block <md5>"
    reader: str  # a user's UUID (and the cluster that forwarded the request), or another cluster


_refusals: deque[Refusal] = deque(maxlen=KEPT)
_lock = threading.Lock()


def record_refusal(what: str, reader: str) -> None:
    with _lock:
        _refusals.append(Refusal(time.time(), what, reader))


def recent_refusals() -> list[Refusal]:
    """The latest refusals of this process, newest first."""
    with _lock:
        return list(reversed(_refusals))
