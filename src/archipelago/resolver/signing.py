"""Requests between a site and its resolvers, signed with the site's key: an HMAC-SHA256 secret
shared by the site and each resolver when the federation is set up (`archi federation up` writes it
into both configurations). Either side signs; the other checks.

The signature covers the method, the path with its query, the site, the time and the body's
SHA-256 (also sent as a header, so a push's signature is checked before its body is read: a stranger
cannot make the resolver hold 32 MiB), so nothing of a request can be changed without the key. A
request is refused when its time is more than `skew` seconds off (or not a finite number); a push
must also be later than the last one accepted from that site (pushes are sequential per resolver,
so a replay, even after the resolver restarts, is always refused); read-only requests carry a nonce
instead, remembered for the skew window.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import Unauthorized

SITE, TIME, NONCE, SIGNATURE = "X-Archi-Site", "X-Archi-Time", "X-Archi-Nonce", "X-Archi-Signature"
CONTENT = "X-Archi-Content-Sha256"
DEFAULT_SKEW = 300.0


def _message(method: str, target: str, site: str, stamp: str, nonce: str, digest: str) -> bytes:
    return "\n".join((method.upper(), target, site, stamp, nonce, digest)).encode()


def sign(key: str, site: str, method: str, target: str, body: bytes = b"", at: float | None = None) -> dict[str, str]:
    """Headers that sign one request: `target` is the path and query as sent (`/resolver/v1/push`)."""
    stamp, nonce, digest = f"{time.time() if at is None else at:.6f}", secrets.token_hex(12), _digest(body)
    mac = hmac.new(key.encode(), _message(method, target, site, stamp, nonce, digest), hashlib.sha256).hexdigest()
    return {SITE: site, TIME: stamp, NONCE: nonce, SIGNATURE: mac, CONTENT: digest}


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Signed:
    site: str
    at: float
    nonce: str


def verify(keys: Mapping[str, str], headers: Mapping[str, str], method: str, target: str, body: bytes | None,
           skew: float = DEFAULT_SKEW, now: float | None = None) -> Signed:
    """Who signed this request (a site whose key we hold), or Unauthorized saying why not. `body` None:
    judged on the headers alone, the body's hash as `CONTENT` declares it (then again with the body, once read)."""
    site, stamp, nonce, given = (headers.get(h, "") for h in (SITE, TIME, NONCE, SIGNATURE))
    if not (site and stamp and nonce and given):
        raise Unauthorized(f"unsigned request: send {SITE}, {TIME}, {NONCE} and {SIGNATURE}")
    key = keys.get(site)
    if key is None:
        raise Unauthorized(f"unknown site {site[:40]!r}: no key is configured for it")
    digest = _digest(body) if body is not None else headers.get(CONTENT, "")
    if not digest:
        raise Unauthorized(f"send {CONTENT}: the SHA-256 of the body, as signed")
    expected = hmac.new(key.encode(), _message(method, target, site, stamp, nonce, digest), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise Unauthorized(f"bad signature for site {site}: not made with its key, or the request was changed")
    try:
        at = float(stamp)
    except ValueError:
        raise Unauthorized(f"{TIME} must be seconds since the epoch") from None
    current = time.time() if now is None else now
    if not math.isfinite(at) or abs(current - at) > skew:
        raise Unauthorized(f"request of site {site} signed {current - at:.0f} s from now (more than {skew:.0f} s "
                           "off: replayed, or the clocks disagree)")
    return Signed(site, at, nonce)


class NonceMemory:
    """Nonces seen within the skew window: a read-only request is answered once."""

    def __init__(self, skew: float = DEFAULT_SKEW):
        self.skew = skew
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def check(self, signed: Signed, now: float | None = None) -> None:
        current = time.time() if now is None else now
        with self._lock:
            if current > self._next_sweep:
                self._seen = {k: t for k, t in self._seen.items() if t > current - 2 * self.skew}
                self._next_sweep = current + self.skew / 4
            if (signed.site, signed.nonce) in self._seen:
                raise Unauthorized(f"replayed request of site {signed.site} (nonce already used)")
            self._seen[(signed.site, signed.nonce)] = signed.at
