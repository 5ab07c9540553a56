"""Reading a keepstore's `/metrics` (Prometheus text): the bytes it fetched from, and served to,
other clusters."""

from __future__ import annotations

from ..keep.client import KeepClient

FETCHED = "archipelago_keep_remote_fetched_bytes_total"
SERVED = "archipelago_keep_served_bytes_total"


def counters(text: str, name: str) -> dict[str, int]:
    """The counter `name` of a /metrics text, by the cluster it counts."""
    prefix = f'{name}{{cluster="'
    found: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            cluster = line[len(prefix):].split('"', 1)[0]
            found[cluster] = found.get(cluster, 0) + int(float(line.rsplit(" ", 1)[1]))
    return found


def fetched_from_clusters(keep_url: str) -> dict[str, int]:
    """Bytes this keepstore has fetched from each other cluster, by cluster ID."""
    client = KeepClient.from_urls([keep_url], cache=None, retries=0, insecure=True)
    return counters(client.metrics(client.services[0]), FETCHED)
