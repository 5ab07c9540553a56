"""Registering data a gateway serves in place: the gateway maps the blocks (its credentials never
leave it) and signs the manifest for the caller, who saves it as a collection like any other."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from threading import Lock
from typing import Any, Protocol

from ..errors import ArchipelagoError, BadRequest, NotFound
from ..formats.locator import EMPTY_LOCATOR, Locator
from ..formats.manifest import parse, replace_locators
from ..keep.client import KeepClient
from ..keep.errors import KeepServiceError, KeepWriteError, ServiceRefused
from ..keep.services import KeepService
from .client import ApiClient


def gateways(client: ApiClient) -> list[dict[str, Any]]:
    return [s for s in client.request("GET", "keep_services/accessible")["items"]
            if str(s.get("service_type", "")).startswith("gateway:")]


def register(client: ApiClient, path: str, gateway_uuid: str | None = None, name: str | None = None,
             project: str | None = None, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """A new collection of the files under `path` (relative to the gateway's root), read in place;
    returns the collection record with `objects` and `bytes` registered. `progress(done, total)`
    follows the gateway's reading (objects mapped before, unchanged, are not read again)."""
    found = gateways(client)
    by_source = [g for g in found if g.get("gateway_source") and
                 (path == g["gateway_source"] or path.startswith(g["gateway_source"].rstrip("/") + "/"))]
    if by_source and gateway_uuid is None:  # `s3://bucket/prefix`, `https://host/base/file`, `/mnt/data/run1`
        gateway_uuid, path = by_source[0]["uuid"], path[len(by_source[0]["gateway_source"]):].strip("/")
    elif gateway_uuid is None and found and ("://" in path or path.startswith("/")):
        served = "; ".join(f"{g['uuid']} serves {g['gateway_source']}" for g in found if g.get("gateway_source"))
        # where a gateway's data lies is shown only to those who may register through it
        hidden = [g["uuid"] for g in found if not g.get("gateway_source")]
        closed = (f"; you may not register through {', '.join(hidden)} (an admin grants can_write on a "
                  f"gateway's UUID)") if hidden else ""
        raise BadRequest(f"no gateway of this cluster serves {path} ({served or 'none that you may use'}{closed}); "
                         f"register data below one of those, or a path below a gateway's root with --gateway")
    chosen = [g for g in found if gateway_uuid in (None, g["uuid"])]
    if not chosen:
        raise NotFound(f"no gateway {gateway_uuid}" if gateway_uuid else "this cluster has no gateway")
    if len(chosen) > 1:
        raise ArchipelagoError(f"this cluster has {len(chosen)} gateways: name one with --gateway "
                               f"({', '.join(g['uuid'] for g in chosen)})", 400)
    service = KeepService.from_record(chosen[0])
    keep = client.keep(cache=None)
    total = done = 0
    final: dict[str, Any] = {}
    try:
        for message in keep.register(service, path):
            if "total" in message:
                total = message["total"]
            elif "done" in message:
                done += message["done"]
                if progress:
                    progress(done, total)
            else:
                final = message
    except KeepServiceError as exc:  # the gateway's own words (a refusal says which grant to ask for)
        raise ArchipelagoError(f"gateway {exc}", exc.status) from None
    if "errors" in final or "manifest_text" not in final:
        raise ArchipelagoError(f"gateway {service.uuid}: {'; '.join(final.get('errors', ['no answer']))}",
                               int(final.get("status", 502)))
    attrs: dict[str, Any] = {"manifest_text": final["manifest_text"], "name": name or path.strip("/") or "registered"}
    if project:
        attrs["owner_uuid"] = project
    record = client.collections.create(attrs, ensure_unique_name=True)
    return {**record, "objects": final["objects"], "bytes": final["bytes"]}


def move(client: ApiClient, identifier: str, to: str = "keep",
         progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Copy a collection's blocks into this cluster's Keep (`to="keep"`: those a gateway holds) or
    into a gateway's store (`to=<its uuid>`: those held anywhere else), each read through the keep
    client and md5-verified first, then point the manifest at the new copies. The PDH is unchanged
    (hints are not part of it); readers holding the old signed locators go on reading the old
    copies, which stay until the new ones are verified and referenced. Returns the updated record
    with `blocks` and `bytes` moved."""
    record = client.collections.get(identifier)
    keep = client.keep(cache=None)
    destination = _destination(client, keep, to)

    def elsewhere(locator: str) -> bool:
        """Not yet where it is asked to be."""
        loc = Locator.parse(locator)
        if loc.stripped == EMPTY_LOCATOR:
            return False
        return bool(loc.service_hints) if to == "keep" else to not in loc.service_hints

    tokens = dict.fromkeys(t for stream in parse(record["manifest_text"]).streams for t in stream.locators)
    todo = [t for t in tokens if elsewhere(t)]
    size = sum(Locator.parse(loc).size or 0 for loc in todo)
    done = [0]
    lock = Lock()

    def copy(locator: str) -> str:
        if (there := destination.holds(locator)) is None:  # a move cut short resumes: held blocks are not sent
            there = destination.put(bytes(keep.get(locator)))  # md5-verified on the way
        with lock:
            done[0] += Locator.parse(locator).size or 0
            if progress:
                progress(done[0], size)
        return there

    with ThreadPoolExecutor(keep.max_workers) as pool:  # a few blocks in flight, each read then written
        moved = dict(zip(todo, pool.map(copy, todo), strict=True))
    if not moved:
        return {**record, "blocks": 0, "bytes": 0}
    text = replace_locators(record["manifest_text"], moved)
    updated = client.collections.update(record["uuid"], {"manifest_text": text})
    if updated["portable_data_hash"] != record["portable_data_hash"]:  # cannot happen: same md5s and sizes
        raise ArchipelagoError(f"moving {record['uuid']} changed its PDH")
    return {**updated, "blocks": len(moved), "bytes": size}


class _Destination(Protocol):
    def holds(self, locator: str) -> str | None:
        """The destination's locator for this block if it holds it already (a move cut short)."""
        ...

    def put(self, data: bytes) -> str:
        """Store the block; its locator there, signed."""
        ...


class _Keep:
    def __init__(self, keep: KeepClient):
        self.keep = keep

    def holds(self, locator: str) -> str | None:
        here = str(Locator.parse(locator).with_service(None))  # the same signature, asked of Keep's own services
        try:
            self.keep.head(here)
        except ArchipelagoError:
            return None
        return here

    def put(self, data: bytes) -> str:
        return str(self.keep.put(data))


class _Gateway:
    def __init__(self, keep: KeepClient, service: KeepService):
        self.keep, self.service = keep, service

    def holds(self, locator: str) -> str | None:
        loc = Locator.parse(locator)
        try:
            self.keep.head(loc.with_service(None), on=self.service)
        except ArchipelagoError:
            return None
        return str(loc.with_service(self.service.uuid))

    def put(self, data: bytes) -> str:
        try:
            return self.keep.put_on(self.service, data)
        except KeepWriteError as exc:  # a refusal (which grant to ask for) keeps its status
            refused = [f.status for f in exc.failures if isinstance(f, ServiceRefused) and f.status in (401, 403)]
            raise ArchipelagoError(f"gateway {self.service.uuid} did not store the block: {exc}",
                                   refused[0] if refused else 502) from None


def _destination(client: ApiClient, keep: KeepClient, to: str) -> _Destination:
    """Where moved blocks go: Keep, or a gateway's store (its hint on the locators)."""
    if to == "keep":
        return _Keep(keep)
    found = gateways(client)
    service = next((g for g in found if g["uuid"] == to), None)
    if service is None:
        raise NotFound(f"no gateway {to} on this cluster (`--to keep`, or one of: "
                       f"{', '.join(g['uuid'] for g in found) or 'none'})")
    return _Gateway(keep, KeepService.from_record(service))
