"""Permission signatures (`+A`) and their remote form (`+R<cluster>-`), as Arvados computes them.

sig = HMAC-SHA1(key, f"{md5hex}@{token}@{expiry:08x}@{ttl:x}"); the token is the exact string the
client presented, and the TTL is part of the MAC so changing it invalidates old signatures.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from ..errors import BadRequest
from .locator import LOCATOR_TOKEN_RE, Locator

_SIGNATURE_HINT_RE = re.compile(r"\+A[^+ \n]*")
_LOCAL_TO_REMOTE_RE = re.compile(r"\+A([0-9a-f]{40}@[0-9a-f]{8})")


class SignatureError(BadRequest):
    """A locator whose signature does not grant access."""


class SignatureMissing(SignatureError):
    """No well-formed +A hint (HTTP 400 "invalid signature")."""


class SignatureInvalid(SignatureError):
    """A +A hint that does not match this token and key (HTTP 400 "invalid signature")."""


class SignatureExpired(SignatureError):
    """A +A hint past its expiry (HTTP 401 "expired signature")."""

    status = 401


def signature(md5: str, token: str, expiry: int, ttl: int, key: bytes) -> str:
    message = f"{md5}@{token}@{expiry:08x}@{ttl:x}".encode()
    return hmac.new(key, message, hashlib.sha1).hexdigest()


def sign_locator(locator: str, token: str, expiry: int, ttl: int, key: bytes) -> str:
    """Append `+A<sig>@<expiry>` after the locator's existing hints (any old +A is dropped)."""
    base = _SIGNATURE_HINT_RE.sub("", locator)
    return f"{base}+A{signature(base[:32], token, expiry, ttl, key)}@{expiry:08x}"


def verify_locator(locator: str | Locator, token: str, ttl: int, key: bytes, now: float | None = None) -> None:
    """Raise a SignatureError unless the locator carries a valid, unexpired +A for this token."""
    parsed = locator if isinstance(locator, Locator) else Locator.parse(locator, require_size=False)
    sig = parsed.signature
    if sig is None:
        raise SignatureMissing("invalid signature: the locator carries no +A permission hint")
    expected = signature(parsed.md5, token, sig.expiry, ttl, key)
    if not hmac.compare_digest(expected, sig.signature):
        raise SignatureInvalid("invalid signature: the permission hint does not match this token")
    if sig.expiry < (time.time() if now is None else now):
        raise SignatureExpired("expired signature: ask the API server for a freshly signed manifest")


def sign_manifest(text: str, token: str, expiry: int, ttl: int, key: bytes) -> str:
    """Sign every locator of a manifest for `token` (replacing any existing +A)."""
    return LOCATOR_TOKEN_RE.sub(lambda m: sign_locator(m[0], token, expiry, ttl, key), text)


def strip_signatures(text: str) -> str:
    """Remove +A hints (what the API server stores); other hints such as +K and +R stay."""
    return _SIGNATURE_HINT_RE.sub("", text) if "+A" in text else text


def local_to_remote(text: str, cluster_id: str) -> str:
    """`+A<sig>` -> `+R<cluster>-<sig>`: how a manifest looks to a client of another cluster."""
    return _LOCAL_TO_REMOTE_RE.sub(lambda m: f"+R{cluster_id}-{m[1]}", text)


def remote_to_local(locator: str, cluster_id: str) -> str:
    """`+R<cluster>-<sig>` -> `+A<sig>`: the form the issuing cluster's keepstore verifies."""
    return locator.replace(f"+R{cluster_id}-", "+A")
