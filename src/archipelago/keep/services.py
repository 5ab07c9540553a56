"""Which keep services a client knows (discovery) and the order it asks them in for a block."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from ..formats.locator import Locator
from ..rpc import ApiConnection, ApiRequestError
from .errors import KeepError
from .rendezvous import rendezvous_order


@dataclass(frozen=True)
class KeepService:
    """One record of the API's `keep_services` (Arvados' KeepService): a keepstore, a proxy, or a
    gateway over an external store (`gateway:<kind>`)."""

    uuid: str
    url: str
    service_type: str = "disk"  # disk | proxy | gateway:<kind>
    read_only: bool = False

    @classmethod
    def from_record(cls, record: dict) -> KeepService:
        scheme = "https" if record.get("service_ssl_flag") else "http"
        return cls(
            uuid=record["uuid"],
            url=f"{scheme}://{record['service_host']}:{record['service_port']}",
            service_type=record.get("service_type", "disk"),
            read_only=bool(record.get("read_only")),
        )

    @property
    def is_gateway(self) -> bool:
        return self.service_type.startswith("gateway:")


def from_urls(urls: Iterable[str]) -> list[KeepService]:
    """Services given as plain URLs, with Arvados' placeholder UUIDs `00000-bi6l4-<index>`."""
    return [KeepService(f"00000-bi6l4-{n:015d}", url.rstrip("/")) for n, url in enumerate(urls)]


def from_env() -> list[KeepService]:
    """`ARVADOS_KEEP_SERVICES` (space-separated URLs), like the Arvados SDK."""
    urls = os.environ.get("ARVADOS_KEEP_SERVICES", "").split()
    if not urls:
        raise KeepError("ARVADOS_KEEP_SERVICES is not set")
    return from_urls(urls)


def from_api(api_url: str, token: str | None = None, insecure: bool = False) -> list[KeepService]:
    """The API server's `keep_services/accessible`, as Arvados clients ask it."""
    try:
        answer = ApiConnection(api_url, token, insecure, timeout=10).request("GET", "keep_services/accessible")
    except ApiRequestError as exc:
        raise KeepError(f"keep_services/accessible at {api_url}: {exc}") from None
    return [KeepService.from_record(item) for item in answer["items"]]


def read_order(locator: Locator, services: list[KeepService]) -> list[KeepService]:
    """Services named by +K hints first, then the non-gateway services by rendezvous weight."""
    hinted = [s for target in locator.service_hints for s in services if s.uuid == target]
    ranked = rendezvous_order(locator.md5, [s for s in services if not s.is_gateway], lambda s: s.uuid)
    return hinted + [s for s in ranked if s not in hinted]


def write_order(md5: str, services: list[KeepService]) -> list[KeepService]:
    """The writable keepstores by rendezvous weight (gateways take blocks only when named)."""
    writable = [s for s in services if not s.read_only and not s.is_gateway]
    return rendezvous_order(md5, writable, lambda s: s.uuid)
