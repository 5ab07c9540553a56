"""The one client for a cluster's REST API (`/arvados/v1/...`), as Arvados' `rpc.Conn` is: the SDK,
the federation's remote backend, remote token validation and the keep client's service discovery
all speak through it.

The transport is injectable: `Urllib3Transport` talks to real servers; tests hand in one that calls
an API application in-process, which makes whole federations testable in milliseconds.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode, urlsplit

import urllib3

from .errors import ArchipelagoError

if TYPE_CHECKING:
    import aiohttp


@dataclass(frozen=True)
class RawResponse:
    status: int
    data: bytes
    reason: str = ""


class TransportError(ConnectionError):
    """No answer from a server, with what kind of failure it was: "certificate" (TLS could not
    verify it), "closed" (it hung up without answering), "refused", or "" (anything else)."""

    def __init__(self, cause: str, kind: str = ""):
        super().__init__(cause)
        self.kind = kind


class Transport(Protocol):
    def request(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> RawResponse:
        """Send one request; raise ConnectionError if the server cannot be reached."""
        ...


class Urllib3Transport:
    """Pooled HTTP(S) connections; `insecure` accepts self-signed certificates (loopback clusters),
    `ca_certs` trusts the certificates in that file instead of the system's (a cluster's own)."""

    def __init__(self, insecure: bool = False, timeout: float = 60.0, connect_timeout: float = 10.0,
                 pool_size: int = 16, ca_certs: str | None = None):
        self._http = urllib3.PoolManager(
            cert_reqs="CERT_NONE" if insecure else "CERT_REQUIRED", retries=False, maxsize=pool_size,
            ca_certs=None if insecure else ca_certs,
            timeout=urllib3.Timeout(connect=min(connect_timeout, timeout), read=timeout),
        )
        if insecure:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def request(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> RawResponse:
        try:
            resp = self._http.request(method, url, body=body, headers=dict(headers))
        except urllib3.exceptions.HTTPError as exc:
            raise _failed(exc) from None
        return RawResponse(resp.status, resp.data, resp.reason or "")


    def lines(self, url: str, headers: Mapping[str, str]) -> Iterator[bytes]:
        """A GET whose body is read line by line as it arrives (server-sent events); no read timeout."""
        try:
            resp = self._http.request("GET", url, headers=dict(headers), preload_content=False,
                                      timeout=urllib3.Timeout(connect=10, read=None))
        except urllib3.exceptions.HTTPError as exc:
            raise _failed(exc) from None
        try:
            if resp.status != 200:
                raise ApiRequestError(resp.status, resp.read()[:200].decode("utf-8", "replace"), url)
            yield from split_lines(resp.stream(4096, decode_content=False))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _failed(exc) from None
        finally:
            resp.release_conn()


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A streamed body's lines as they arrive, without their newlines (an unterminated last piece is
    not a line: the body was cut short)."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        yield from complete


def _failed(exc: BaseException) -> TransportError:
    """The innermost reason urllib3 was given ("Connection refused", a certificate not trusted and
    why), in words, never its nested repr."""
    inner = _innermost(exc)
    if isinstance(inner, ssl.SSLCertVerificationError):
        return TransportError(f"its TLS certificate is not trusted ({inner.verify_message or inner.reason})",
                              "certificate")
    if isinstance(inner, ssl.SSLError):
        return TransportError(f"TLS failed ({inner.reason or inner.__class__.__name__})")
    if isinstance(inner, http.client.RemoteDisconnected | ConnectionResetError | ConnectionAbortedError):
        return TransportError("the server closed the connection without answering", "closed")
    if isinstance(inner, ConnectionRefusedError):
        return TransportError(inner.strerror or "Connection refused", "refused")
    if isinstance(inner, OSError) and inner.strerror:
        return TransportError(inner.strerror)
    text = str(getattr(inner, "reason", None) or inner)
    return TransportError(text.rsplit(": ", 1)[-1] if text else inner.__class__.__name__)


def _innermost(exc: BaseException) -> BaseException:
    """Follow urllib3's wrapping (a `reason`, an exception among the args, the context) to its end."""
    seen = {id(exc)}
    while True:
        nested = [getattr(exc, "reason", None), *getattr(exc, "args", ()), exc.__cause__, exc.__context__]
        inner = next((e for e in nested if isinstance(e, BaseException) and id(e) not in seen), None)
        if inner is None:
            return exc
        seen.add(id(inner))
        exc = inner


class ApiRequestError(ArchipelagoError):
    """The API answered with an error (its status and messages), or could not be reached (503)."""

    def __init__(self, status: int, message: str, url: str = ""):
        super().__init__(f"HTTP {status}: {message}", status)
        self.message, self.url = message, url


class Unreachable(ApiRequestError):
    """No answer at all (refused, timed out, bad certificate): named as such, not as an HTTP status."""

    def __init__(self, host: str, cause: str, kind: str = "", url: str = ""):
        super().__init__(503, f"cannot reach {host}: {cause}", url or host)
        self.args = (self.message,)  # str(): "cannot reach HOST: CAUSE"
        self.host, self.cause, self.kind = host, cause, kind  # kind: as TransportError's


class ApiConnection:
    """Requests to one cluster's API with one token (another may be given per call)."""

    def __init__(self, base_url: str, token: str | None = None, insecure: bool = False, timeout: float = 60.0,
                 transport: Transport | None = None):
        self.base = (base_url if "://" in base_url else f"https://{base_url}").rstrip("/")
        self.host = urlsplit(self.base).netloc
        self.token, self.insecure = token, insecure
        self.transport = transport or Urllib3Transport(insecure, timeout)

    def request(self, method: str, path: str, params: Mapping[str, Any] | None = None,
                body: Mapping[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
        """The decoded JSON answer; ApiRequestError (with the server's messages) for any error status."""
        url = f"{self.base}/arvados/v1/{path}"
        if params:
            url += "?" + urlencode(params)
        headers = {"Accept": "application/json"}
        if token or self.token:
            headers["Authorization"] = f"Bearer {token or self.token}"
        encoded = None
        if body is not None:
            encoded = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            resp = self.transport.request(method, url, encoded, headers)
        except ConnectionError as exc:
            raise Unreachable(self.host, str(exc), getattr(exc, "kind", ""), self.base) from None
        try:
            data = json.loads(resp.data) if resp.data else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiRequestError(resp.status if resp.status >= 400 else 502,
                                  f"unreadable answer from {self.host}: "
                                  f"{resp.data[:200].decode('utf-8', 'replace')}", url) from None
        if resp.status >= 400:
            errors = data.get("errors") if isinstance(data, dict) else None
            message = "; ".join(str(e) for e in errors) if isinstance(errors, list) else ""
            raise ApiRequestError(resp.status, message or resp.reason or f"HTTP {resp.status}", url)
        if not isinstance(data, dict):
            raise ApiRequestError(502, f"{self.host} answered with a JSON {type(data).__name__}, not an object", url)
        return data

    def events(self, kinds: list[str] | None = None, after: int | None = None) -> Iterator[dict[str, Any]]:
        """The cluster's change stream (`GET events`): one dict per committed change, as it happens.
        Ends (ConnectionError) when the connection drops; resume with `after` = the last `seq`."""
        lines = getattr(self.transport, "lines", None)
        if lines is None:
            raise ApiRequestError(501, "this transport cannot follow a stream")
        params = {**({"kinds": ",".join(kinds)} if kinds else {}), **({"after": after} if after else {})}
        url = f"{self.base}/arvados/v1/events" + (f"?{urlencode(params)}" if params else "")
        headers = {"Accept": "text/event-stream", **({"Authorization": f"Bearer {self.token}"} if self.token else {})}
        for line in lines(url, headers):
            if line.startswith(b"data: "):
                yield json.loads(line[6:])


def async_session(total_timeout: float | None, limit: int = 100, connect_timeout: float | None = None,
                  unix_socket: str | None = None, decompress: bool = True) -> aiohttp.ClientSession:
    """The asynchronous face, for the few callers that talk to many HTTP services from one event loop
    (the resolver polling every site, a site pushing to its resolvers) or proxy one (a container's
    JupyterLab on its unix socket). Built here, beside Urllib3Transport, so that HTTP clients are
    built in two modules only: this one and keep/http.py (tests/unit/test_connection_pools.py)."""
    import aiohttp  # the synchronous callers (CLI, SDK) do not pay for importing it

    connector = (aiohttp.UnixConnector(path=unix_socket, force_close=True) if unix_socket
                 else aiohttp.TCPConnector(limit=limit))
    return aiohttp.ClientSession(connector=connector, auto_decompress=decompress,
                                 timeout=aiohttp.ClientTimeout(total=total_timeout, sock_connect=connect_timeout))
