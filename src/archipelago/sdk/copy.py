"""Copy collections to another cluster of the federation (`archi copy`).

The caller's token, salted for the destination, identifies them there. A collection whose PDH
already exists (and is readable) at the destination is not copied again; otherwise each block is
read through the home cluster (which fetches remote blocks itself) and stored at the destination,
then the manifest is re-signed there by saving it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..auth.salt import salt_token
from ..keep.manifest import parse, render
from .client import ApiClient, ApiRequestError


def client_for_cluster(client: ApiClient, cluster_id: str) -> ApiClient:
    remotes = client.config().get("RemoteClusters", {})
    if cluster_id not in remotes:
        raise ApiRequestError(422, f"cluster {cluster_id} is not federated with {client.base}")
    remote = remotes[cluster_id]
    return ApiClient(f"{remote.get('Scheme', 'https')}://{remote['Host']}", salt_token(client.token, cluster_id),
                     insecure=bool(remote.get("Insecure")))


def copy_collection(client: ApiClient, source: str, cluster_id: str, project: str | None = None,
                    progress: Callable[[int], None] | None = None) -> tuple[dict[str, Any], bool]:
    """(the destination's record, whether anything was copied)."""
    dest = client_for_cluster(client, cluster_id)
    record = client.collections.get(source)
    existing = dest.collections.list([["portable_data_hash", "=", record["portable_data_hash"]]], limit=1)
    if existing["items"] and not project:
        return existing["items"][0], False
    tree = parse(record["manifest_text"]).tree()
    source_keep, dest_keep = client.keep(cache=None), dest.keep(cache=None)
    copied: dict[str, str] = {}
    for files in tree.values():
        for segments in files.values():
            for n, (locator, offset, size) in enumerate(segments):
                if locator not in copied:
                    data = source_keep.get(locator)
                    copied[locator] = dest_keep.put(data)
                    if progress:
                        progress(len(data))
                segments[n] = (copied[locator], offset, size)
    attrs: dict[str, Any] = {"manifest_text": render(tree), "name": record.get("name") or source,
                             "properties": record.get("properties") or {}}
    if project:
        attrs["owner_uuid"] = project
    return dest.collections.create(attrs, ensure_unique_name=True), True
