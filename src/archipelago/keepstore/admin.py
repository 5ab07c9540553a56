"""The endpoints keep-balance and operators use, all behind the system root token: the block
index, mounts, trash/untrash, the pull list, and the cross-cluster byte counters."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from ..formats.locator import Locator
from ..keep.errors import InvalidLocator
from .http import request_token, run
from .metrics import FETCHED, SERVED
from .service import KeepstoreState


class Admin:
    def __init__(self, service: KeepstoreState, pull_wakeup: Any):
        self.service, self.store = service, service.store
        self._pull_wakeup = pull_wakeup  # () -> None: tells the pull worker there is work

    async def index(self, request: web.Request) -> web.Response:
        self.service.require_root(request_token(request))
        text = await run(self.store.index, request.match_info.get("prefix", ""), request.match_info.get("uuid"))
        return web.Response(text=text, content_type="text/plain")

    async def mounts(self, request: web.Request) -> web.Response:
        self.service.require_root(request_token(request))
        return web.json_response([
            {"uuid": v.uuid, "device_id": v.device_id, "allow_write": not v.read_only,
             "allow_trash": not v.read_only, "replication": v.replication,
             "storage_classes": {c: True for c in sorted(v.storage_classes)}}
            for v in self.store.volumes
        ])

    async def trash(self, request: web.Request) -> web.Response:
        """Trash blocks keep-balance found unreferenced, only if unchanged and older than the TTL."""
        self.service.require_root(request_token(request))
        now = time.time()
        delete_at = now + self.service.config.collections.blob_trash_lifetime
        trashed = refused = 0
        for item in await _json_list(request):
            locator = Locator.parse(str(item.get("locator", "")))
            done, kept = await run(self.store.trash_if_unchanged, locator.md5, item.get("block_mtime"),
                                   item.get("mount_uuid") or None, self.service.ttl, delete_at, now)
            trashed, refused = trashed + done, refused + kept
        return web.json_response({"trashed": trashed, "refused": refused})

    async def untrash(self, request: web.Request) -> web.Response:
        self.service.require_root(request_token(request))
        locator = Locator.parse(request.match_info["locator"], require_size=False)
        return web.json_response({"untrashed": await run(self.store.untrash, locator.md5)})

    async def pull(self, request: web.Request) -> web.Response:
        """Replace the pull list: blocks this keepstore should copy from the named servers."""
        self.service.require_root(request_token(request))
        items = await _json_list(request)
        for item in items:
            Locator.parse(str(item.get("locator", "")))
            if not isinstance(item.get("servers"), list):
                raise InvalidLocator("each pull request needs a 'servers' list")
        self.service.pull_queue = items
        self._pull_wakeup()
        return web.json_response({"queued": len(items)})

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus text: bytes this keepstore fetched from, and served to, each other cluster."""
        lines: list[str] = []
        for name, help_text, counts in ((FETCHED, "Bytes fetched from another cluster.", self.service.remote.fetched),
                                        (SERVED, "Bytes served to another cluster's keepstore.", self.service.served)):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
            lines += [f'{name}{{cluster="{c}"}} {n}' for c, n in sorted(counts.items())]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


async def _json_list(request: web.Request) -> list[dict[str, Any]]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidLocator("request body must be a JSON list") from None
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise InvalidLocator("request body must be a JSON list of objects")
    return body
