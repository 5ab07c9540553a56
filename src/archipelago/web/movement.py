"""What crossed between clusters, as the keepstores count it (`/metrics` on each: bytes fetched
from and served to every other cluster, since the keepstore started), and each cluster's health as
its API answers it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..backend.interface import Caller
from ..errors import ArchipelagoError
from ..keep.client import KeepClient
from ..keep.errors import KeepServiceError
from ..keep.services import KeepService
from ..keepstore.metrics import FETCHED, SERVED, counters
from ..rpc import ApiConnection, Urllib3Transport
from .federation import Federation

TIMEOUT = 3.0


@dataclass
class Counters:
    """One cluster's keepstores: bytes fetched from each other cluster, and served to each."""

    cluster: str
    fetched: dict[str, int] = field(default_factory=dict)
    served: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Health:
    cluster: str
    url: str
    ok: bool
    seconds: float | None
    detail: str
    config: dict[str, Any] = field(default_factory=dict)


def parse_metrics(text: str) -> tuple[dict[str, int], dict[str, int]]:
    return counters(text, FETCHED), counters(text, SERVED)


class Movement:
    def __init__(self, federation: Federation):
        self.fed = federation
        self._http = Urllib3Transport(insecure=True, timeout=TIMEOUT)  # the peers of this federation
        self._keep: dict[tuple[KeepService, ...], KeepClient] = {}  # their keepstores, by who they are

    def _connection(self, caller: Caller, cluster: str) -> ApiConnection:
        if cluster == self.fed.home:
            return ApiConnection(self.fed.url(cluster), caller.token, True, TIMEOUT, self._http)
        remote = self.fed.remotes[cluster]
        return ApiConnection(remote.connection.base, remote.token_for(caller), True, TIMEOUT,
                             remote.connection.transport)

    def _services(self, caller: Caller, cluster: str) -> list[KeepService]:
        if cluster == self.fed.home:
            items = self.fed.backend.keep_services(caller)["items"]
        else:
            items = self._connection(caller, cluster).request("GET", "keep_services/accessible")["items"]
        return [KeepService.from_record(s) for s in items if s.get("service_type", "disk") == "disk"]

    def counters(self, caller: Caller) -> list[Counters]:
        def on(cluster: str) -> Counters:
            result = Counters(cluster)
            keep = self._keep_client(tuple(self._services(caller, cluster)))
            for service in keep.services:
                try:
                    text = keep.metrics(service)
                except KeepServiceError as exc:
                    result.error = f"keepstore {service.url}: {exc.failure.detail}"
                    continue
                fetched, served = parse_metrics(text)
                for source, n in fetched.items():
                    result.fetched[source] = result.fetched.get(source, 0) + n
                for target, n in served.items():
                    result.served[target] = result.served.get(target, 0) + n
            return result

        return [r if isinstance(r, Counters) else Counters(c, error=str(r)) for c, r in self.fed.each(on).items()]

    def _keep_client(self, services: tuple[KeepService, ...]) -> KeepClient:
        if services not in self._keep:
            self._keep[services] = KeepClient(list(services), cache=None, retries=0, connect_timeout=TIMEOUT,
                                              read_timeout=TIMEOUT, insecure=True)
        return self._keep[services]

    @staticmethod
    def pairs(counters: list[Counters]) -> dict[str, int]:
        """"from→to" -> bytes, as the receiving cluster's keepstores counted what they fetched."""
        return {f"{source}→{c.cluster}": n for c in counters for source, n in sorted(c.fetched.items()) if n}

    def health(self, caller: Caller) -> list[Health]:
        def on(cluster: str) -> Health:
            url = self.fed.url(cluster)
            started = time.perf_counter()
            try:
                answer = self._http.request("GET", f"{url}/_health/ping", None, {})
                seconds = time.perf_counter() - started
                config = self._connection(caller, cluster).request("GET", "config")
            except (ConnectionError, ArchipelagoError) as exc:
                return Health(cluster, url, False, None, f"unreachable: {exc}")
            ok = answer.status == 200
            return Health(cluster, url, ok, seconds, "answers" if ok else f"HTTP {answer.status}", config)

        return [r if isinstance(r, Health) else Health(c, self.fed.url(c), False, None, str(r))
                for c, r in self.fed.each(on).items()]
