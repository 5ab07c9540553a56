"""Calls to one named keep service beyond reading and writing blocks: keepstore's admin endpoints
(keep-balance's index, trash and pull, the byte counters at /metrics) and a gateway's register.
Each fails with a KeepServiceError carrying the service's typed failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import urllib3

from ..rpc import split_lines
from .errors import CutShort, KeepServiceError, ServiceFailure
from .http import Response
from .services import KeepService

if TYPE_CHECKING:
    from .client import KeepClient


@dataclass(frozen=True)
class IndexEntry:
    """One line of a keepstore's index: a block it holds and when it was last written there."""

    locator: str  # md5+size
    mtime: int  # nanoseconds, as keepstore reports it


def index(client: KeepClient, service: KeepService, prefix: str = "") -> list[IndexEntry]:
    """The blocks the keepstore holds whose md5 starts with `prefix` (system root token)."""
    text = _text(client, service, "GET", f"index/{prefix}" if prefix else "index")
    return [IndexEntry(fields[0], int(fields[1])) for line in text.splitlines() if len(fields := line.split()) >= 2]


def trash(client: KeepClient, service: KeepService, entries: list[IndexEntry]) -> int:
    """Ask the keepstore to trash these copies (each only if unchanged since the index said so);
    how many it trashed."""
    body = json.dumps([{"locator": e.locator, "block_mtime": e.mtime} for e in entries]).encode()
    return int(json.loads(_text(client, service, "PUT", "trash", body)).get("trashed", 0))


def pull(client: KeepClient, service: KeepService, requests: list[dict[str, Any]]) -> int:
    """Replace the keepstore's pull list (`{"locator", "servers": [urls]}` each); how many it queued."""
    return int(json.loads(_text(client, service, "PUT", "pull", json.dumps(requests).encode())).get("queued", 0))


def metrics(client: KeepClient, service: KeepService) -> str:
    """The keepstore's Prometheus counters (unauthenticated, as in Arvados)."""
    return _text(client, service, "GET", "metrics")


def register(client: KeepClient, service: KeepService, path: str) -> Iterator[dict[str, Any]]:
    """A gateway's registration of the objects under `path`, as the JSON messages it streams
    (`{"total"}`, `{"done"}`…, then the result or `{"errors", "status"}`)."""
    answer = _answer(client, service, "POST", "register", json.dumps({"path": path}).encode(),
                     {"Content-Type": "application/json"})
    try:
        for line in split_lines(answer.stream(1 << 16)):
            if line:
                yield json.loads(line)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise _cut_short(service, exc) from None
    finally:
        answer.release_conn()


def _answer(client: KeepClient, service: KeepService, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> Response:
    answer = client.http.ask(service.url, method, path, client.headers(headers), body)
    if isinstance(answer, ServiceFailure):
        raise KeepServiceError(f"{service.uuid} ({service.url}/{path}): {answer.detail}", answer)
    return answer


def _text(client: KeepClient, service: KeepService, method: str, path: str, body: bytes | None = None) -> str:
    answer = _answer(client, service, method, path, body)
    try:
        return answer.read().decode("utf-8", "replace")
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise _cut_short(service, exc) from None
    finally:
        answer.release_conn()


def _cut_short(service: KeepService, exc: Exception) -> KeepServiceError:
    failure = CutShort(service.url, f"the answer was cut short ({exc.__class__.__name__})")
    return KeepServiceError(f"{service.uuid}: {failure.detail}", failure)
