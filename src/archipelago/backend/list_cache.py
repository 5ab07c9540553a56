"""Recent list answers, kept while nothing in the database has changed.

Clients ask the same lists again and again (a project's contents, a dashboard's query, every page
of a poll); under load, rendering the same 100 rows for each was much of the API's time. An answer
is kept per caller — everything a listing depends on: who (their permissions are a function of the
database), with which token, as an admin or not, forwarded by a peer or not, from a container or
not — and per query, under the version of the database's writes signal read *before* it was
computed (db/unit.py bumps it after every commit that wrote anything, in any API process on this
host). A cached answer is served only while that version is unchanged, so a write is seen by the
next request, as without the cache. Writers this host's signal does not hear of (API processes on
other hosts sharing a PostgreSQL database) are bounded by `max_age`, as the token and permission
caches are. Answers with `select` are not kept (they may carry signatures that expire).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import orjson

from ..auth.caller import Caller, Record
from .interface import ListParams

Key = tuple[Any, ...]


class ListCache:
    def __init__(self, max_age: float = 2.0, max_bytes: int = 32 << 20, max_answer: int = 1 << 20):
        self.max_age, self.max_bytes, self.max_answer = max_age, max_bytes, max_answer
        self._entries: OrderedDict[Key, tuple[int, float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(caller: Caller, resource: str, params: ListParams) -> Key | None:
        if params.select is not None:
            return None
        try:
            filters = orjson.dumps(params.filters)
        except TypeError:
            return None
        who = (caller.user_uuid, caller.authorization_uuid, caller.is_admin, caller.via, caller.container_uuid)
        return (resource, *who, filters, tuple(params.order), params.limit, params.offset, params.count,
                params.include_trash)

    def get(self, key: Key, version: int) -> Record | None:
        """A copy of the answer kept for `key` at `version` (callers may change what they get)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] != version or time.monotonic() - entry[1] > self.max_age:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            body = entry[2]
        answer: Record = orjson.loads(body)
        return answer

    def put(self, key: Key, version: int, answer: Record) -> None:
        try:
            body = orjson.dumps(answer)
        except TypeError:
            return
        if len(body) > self.max_answer:
            return
        with self._lock:
            self._drop(key)
            self._entries[key] = (version, time.monotonic(), body)
            self._bytes += len(body)
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[2])
