"""Reading a keepstore's `/metrics` (Prometheus text): the bytes it fetched from other clusters."""

from __future__ import annotations

import urllib3

FETCHED = "archipelago_keep_remote_fetched_bytes_total"
SERVED = "archipelago_keep_served_bytes_total"


def fetched_from_clusters(keep_url: str) -> dict[str, int]:
    """Bytes this keepstore has fetched from each other cluster, by cluster ID."""
    text = urllib3.request("GET", f"{keep_url}/metrics").data.decode()
    prefix = f'{FETCHED}{{cluster="'
    return {line[len(prefix):].split('"')[0]: int(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line.startswith(prefix)}
