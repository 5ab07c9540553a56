"""A stranger's request bodies against a real cluster's API server (SQLite and PostgreSQL): a body
that declares 100 MiB is refused (401) before it is read, whether JSON or a URL-encoded form (the
API reads a form for its `api_token` when no header carries one, as Arvados clients may send it: it
read a stranger's 100 MiB, and parsed it, before saying 401). A small form with its token still
authenticates."""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from archipelago.api.app import TOKEN_FORM_BYTES

pytestmark = pytest.mark.integration


def status_of(api_url: str, path: str, content_type: str, body: bytes, length: int | None = None,
              **headers: str) -> int:
    """The status the server answers with (0: none within 5 s), `length` declared, only `body` sent."""
    where = urlsplit(api_url)
    context = ssl._create_unverified_context()
    lines = [f"POST {path} HTTP/1.1", f"Host: {where.netloc}", f"Content-Type: {content_type}",
             f"Content-Length: {len(body) if length is None else length}", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection((where.hostname or "", where.port or 443), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=where.hostname) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        try:
            answer = conn.recv(64)
        except TimeoutError:
            return 0
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "application/json"])
def test_a_strangers_large_body_is_refused_before_it_is_read(cluster: Any, content_type: str) -> None:
    started = time.monotonic()
    assert status_of(cluster.api_url, "/arvados/v1/collections", content_type, b"", length=100 << 20) == 401
    assert time.monotonic() - started < 4
    over = b"name=" + b"x" * TOKEN_FORM_BYTES  # sent whole, no token: refused once past the bound
    assert status_of(cluster.api_url, "/arvados/v1/collections", content_type, over) == 401


def test_a_small_form_still_carries_its_token(cluster: Any) -> None:
    form = urlencode({"api_token": cluster.admin_token, "_method": "GET"}).encode()
    assert status_of(cluster.api_url, "/arvados/v1/users/current", "application/x-www-form-urlencoded", form) == 200
