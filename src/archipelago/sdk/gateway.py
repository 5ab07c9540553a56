"""Registering data a gateway serves in place: the gateway maps the blocks (its credentials never
leave it) and signs the manifest for the caller, who saves it as a collection like any other."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import urllib3

from ..errors import ArchipelagoError, NotFound
from .client import ApiClient


def gateways(client: ApiClient) -> list[dict[str, Any]]:
    return [s for s in client.request("GET", "keep_services/accessible")["items"]
            if str(s.get("service_type", "")).startswith("gateway:")]


def register(client: ApiClient, path: str, gateway_uuid: str | None = None, name: str | None = None,
             project: str | None = None) -> dict[str, Any]:
    """A new collection of the files under `path` (relative to the gateway's root), read in place;
    returns the collection record with `objects` and `bytes` registered."""
    found = gateways(client)
    chosen = [g for g in found if gateway_uuid in (None, g["uuid"])]
    if not chosen:
        raise NotFound(f"no gateway {gateway_uuid}" if gateway_uuid else "this cluster has no gateway")
    if len(chosen) > 1:
        raise ArchipelagoError(f"this cluster has {len(chosen)} gateways: name one with --gateway "
                               f"({', '.join(g['uuid'] for g in chosen)})", 400)
    service = chosen[0]
    url = f"{'https' if service.get('service_ssl_flag') else 'http'}://{service['service_host']}:" \
          f"{service['service_port']}/register"
    response = urllib3.request("POST", url, body=json.dumps({"path": path}).encode(), timeout=None,
                               headers={"Authorization": f"Bearer {client.token}", "Content-Type": "application/json"})
    answer = json.loads(response.data or b"{}")
    if response.status != 200:
        raise ArchipelagoError(f"gateway {service['uuid']}: {'; '.join(answer.get('errors', [])) or response.status}",
                               response.status)
    attrs: dict[str, Any] = {"manifest_text": answer["manifest_text"], "name": name or path.strip("/") or "registered"}
    if project:
        attrs["owner_uuid"] = project
    record = client.collections.create(attrs, ensure_unique_name=True)
    return {**record, "objects": answer["objects"], "bytes": answer["bytes"]}


GATEWAY_LOCATOR = re.compile(r"\b[0-9a-f]{32}\+\d+(?:\+[^\s+]+)*\+K@[a-z0-9]{5}-bi6l4-[a-z0-9]{15}(?:\+[^\s+]+)*")


def move_to_keep(client: ApiClient, identifier: str, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Copy a collection's gateway-held blocks into this cluster's Keep (each read through its
    gateway, md5-verified, then stored), then point the manifest at them. The PDH is unchanged
    (hints are not part of it); readers in the middle of a read keep their signed locators, which
    the gateway still serves. Returns the updated record with `blocks` and `bytes` moved."""
    record = client.collections.get(identifier)
    keep = client.keep()
    moved: dict[str, str] = {}
    size = 0
    for locator in dict.fromkeys(GATEWAY_LOCATOR.findall(record["manifest_text"])):
        data = keep.get(locator)
        moved[locator] = keep.put(data)
        size += len(data)
        if progress:
            progress(len(data))
    if not moved:
        return {**record, "blocks": 0, "bytes": 0}
    text = GATEWAY_LOCATOR.sub(lambda match: moved[match[0]], record["manifest_text"])
    updated = client.collections.update(record["uuid"], {"manifest_text": text})
    if updated["portable_data_hash"] != record["portable_data_hash"]:  # cannot happen: same md5s and sizes
        raise ArchipelagoError(f"moving {record['uuid']} changed its PDH; the old manifest is kept in its versions")
    return {**updated, "blocks": len(moved), "bytes": size}
