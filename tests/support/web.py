"""A browser's HTTP, without the browser: a cookie jar, forms sent with an Origin header as a browser
sends them, exact paths (no client-side normalising of `..`), and the CSRF token a page carries."""

from __future__ import annotations

import http.client
import re
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: list[str]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def location(self) -> str:
        return self.headers.get("location", "")


class WebClient:
    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")
        self.where = urlsplit(self.base)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str) -> Answer:
        connection = http.client.HTTPSConnection(self.where.hostname or "", self.where.port, timeout=60,
                                                 context=ssl._create_unverified_context())
        if self.cookies and "Cookie" not in headers:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        connection.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
        response = connection.getresponse()
        data = response.read()
        connection.close()
        set_cookies = [v for k, v in response.getheaders() if k.lower() == "set-cookie"]
        for line in set_cookies:
            name, _, rest = line.partition("=")
            value = rest.split(";", 1)[0].strip('"')
            if "max-age=0" in line.lower() or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data, set_cookies)

    def get(self, path: str, **headers: str) -> Answer:
        return self.request("GET", path, **headers)

    def post(self, path: str, fields: dict[str, Any] | None = None, origin: str | None = None,
             **headers: str) -> Answer:
        """A form, as a browser on `origin` (default: this site) sends it."""
        headers.setdefault("Origin", origin or self.base)
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return self.request("POST", path, urlencode(fields or {}).encode(), **headers)

    def login(self, token: str) -> Answer:
        return self.post("/login", {"token": token, "next": "/data"})

    def csrf(self, path: str = "/data") -> str:
        match = CSRF_META.search(self.get(path).text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)
