"""Asking resolvers, in turn: for an identifier (anyone), for the holders of a PDH (a member site,
signed with its key), for the sites and their liveness. A resolver that does not answer is skipped
for a while, so a dead resolver does not slow every lookup; when none answers the caller is told
(None) and falls back to what it can do alone."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from ..errors import ArchipelagoError
from ..rpc import Urllib3Transport
from .signing import sign

QUIET_SECONDS = 10.0  # a resolver that failed is not asked again for this long
COVERED_SECONDS = 60.0  # which sites a resolver covers changes only when it is reconfigured


@dataclass
class Answer:
    url: str
    data: dict[str, Any]


@dataclass
class ResolverClient:
    urls: list[str]
    site: str | None = None  # a member site asking (signs with its key)
    key: str | None = None
    timeout: float = 3.0
    failed: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.urls = [u.rstrip("/") for u in self.urls]
        self._http = Urllib3Transport(timeout=self.timeout, connect_timeout=1.0, pool_size=8)
        self._lock = threading.Lock()
        self._covered: dict[str, tuple[float, set[str]]] = {}

    def _ask(self, target: str, signed: bool = False) -> Answer | None:
        """The first answer of a resolver, in order (those that failed recently are left out for a while);
        None if none answered.
        An answer with an error status a client caused (400, 422) is raised: asking others won't help."""
        now = time.monotonic()
        with self._lock:
            order = [u for u in self.urls if self.failed.get(u, 0) <= now - QUIET_SECONDS]
        self.errors = [f"{u}: failed less than {QUIET_SECONDS:.0f} s ago" for u in self.urls if u not in order]
        for url in order:
            headers = sign(self.key, self.site, "GET", target) if signed and self.key and self.site else {}
            try:
                response = self._http.request("GET", url + target, None, headers)
            except ConnectionError as exc:
                self._failed(url, f"{url}: {exc}")
                continue
            try:
                data = json.loads(response.data)
            except (json.JSONDecodeError, UnicodeDecodeError):
                self._failed(url, f"{url}: HTTP {response.status}, not JSON")
                continue
            if response.status in (400, 422):
                raise ArchipelagoError("; ".join(map(str, data.get("errors", []))), response.status)
            if response.status != 200 or not isinstance(data, dict):
                self._failed(url, f"{url}: HTTP {response.status}: {'; '.join(map(str, data.get('errors', [])))}")
                continue
            with self._lock:
                self.failed.pop(url, None)
            return Answer(url, data)
        return None

    def _failed(self, url: str, message: str) -> None:
        self.errors.append(message)
        with self._lock:
            self.failed[url] = time.monotonic()

    def resolve(self, identifier: str) -> Answer | None:
        return self._ask("/resolver/v1/resolve?" + urlencode({"id": identifier}))

    def holders(self, pdh: str) -> Answer | None:
        return self._ask(f"/resolver/v1/contents/{quote(pdh, safe='')}", signed=True)

    def sites(self) -> Answer | None:
        return self._ask("/resolver/v1/sites")

    def covered(self, url: str) -> set[str]:
        """The sites resolver `url` covers (asked at most once a minute; empty if it cannot say)."""
        now = time.monotonic()
        cached = self._covered.get(url)
        if cached is not None and now - cached[0] < COVERED_SECONDS:
            return cached[1]
        try:
            response = self._http.request("GET", url + "/resolver/v1/sites", None, {})
            sites = {s["site"] for s in json.loads(response.data)["sites"]} if response.status == 200 else set()
        except (ConnectionError, ValueError, KeyError, TypeError):
            sites = set()
        self._covered[url] = (now, sites)
        return sites
