"""The keep client's connections: the one pool that block transfers and keep admin calls go through
(with the API client's in rpc.py, the only pools the project builds: tests/unit/test_layering.py),
and what one exchange with a service comes to — an open answer, or a typed failure."""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from typing import Any

import urllib3

from .errors import ERROR_KIND_HEADER, CorruptBlock, CorruptCopy, NoAnswer, NotHeld, ServiceFailure, ServiceRefused

Response = urllib3.BaseHTTPResponse
BodyError = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)  # a body cut short


def read_into(answer: Response, view: memoryview) -> int:
    """Bytes of an open answer's body read straight into `view` (0 at its end). urllib3's own
    readinto reads into a new bytes object and copies that: on this project's VM a copy of a block
    costs about as much as its md5. An encoded body is left to urllib3 (it would decode it)."""
    beneath = getattr(answer, "_fp", None)
    if isinstance(beneath, http.client.HTTPResponse) and not answer.headers.get("Content-Encoding"):
        return beneath.readinto(view)
    return answer.readinto(view)


class KeepConnections:
    """Pooled HTTP(S) connections with the client's timeouts. Retries are the caller's decision
    (keep/attempts.py), made on typed failures; `retries` here is only for plain object reads of
    external stores (gateway/stores.py), where urllib3 may reconnect on its own."""

    def __init__(self, pool_size: int = 8, connect_timeout: float = 5.0, read_timeout: float = 300.0,
                 insecure: bool = False, retries: int = 0):
        self._pool = urllib3.PoolManager(
            maxsize=pool_size, cert_reqs="CERT_NONE" if insecure else "CERT_REQUIRED",
            retries=urllib3.Retry(retries, redirect=False) if retries else False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout))
        if insecure:  # a loopback cluster's own self-signed certificates
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def ask(self, service: str, method: str, path: str, headers: Mapping[str, str],
            body: bytes | bytearray | memoryview | None = None) -> Response | ServiceFailure:
        """One request to the keep service at URL `service`: its open answer if it is a 200 (read it,
        then release it), or the typed failure it comes to (its connection already released)."""
        try:
            answer = self._pool.request(method, f"{service}/{path}", body=body, headers=dict(headers),  # type: ignore[arg-type]
                                        preload_content=False, redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            return NoAnswer(service, f"connection failed ({exc.__class__.__name__})")
        if answer.status == 200:
            return answer
        detail = error_text(answer.read())
        kind = answer.headers.get(ERROR_KIND_HEADER, "")
        answer.release_conn()
        return failure_for(service, answer.status, detail, kind)

    def fetch(self, method: str, url: str, headers: Mapping[str, str], preload: bool = True) -> Response:
        """A plain request to any URL (an external store's object, which is no keep service); urllib3's
        errors are the caller's. Redirects are not followed: the caller judges where they lead."""
        return self._pool.request(method, url, headers=dict(headers), preload_content=preload, redirect=False)


def failure_for(service: str, status: int, detail: str, kind: str = "") -> ServiceFailure:
    """The typed failure an error status from a keep service comes to."""
    text = f"HTTP {status} {detail}".strip()
    if status in (404, 410):
        return NotHeld(service, text, status)
    if kind == CorruptBlock.error_kind:
        return CorruptCopy(service, text)
    return ServiceRefused(service, text, status)


def error_text(body: bytes) -> str:
    """The `{"errors": [...]}` body of a keep service's error, or the start of whatever it sent."""
    try:
        parsed: Any = json.loads(body)
        return "; ".join(parsed["errors"])
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace").strip()
