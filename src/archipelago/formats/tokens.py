"""API tokens (reference §5): v2 `v2/<authorization uuid>/<secret>`, presented as `Bearer` or
`OAuth2`, and their salted form, what a cluster sends to another cluster in place of a user's
real token.

salt(v2/<uuid>/<secret>, target) = v2/<uuid>/<hex HMAC-SHA1(key=secret, msg=target cluster id)>.
The target can check it with the issuing cluster, but cannot use it anywhere else, and at home it
is good only for identity lookups (`?remote=<target>`). A salted secret is 40 hex characters; a
fresh one is 50 base36 characters, so the length alone tells them apart.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from ..errors import BadRequest
from ..ids import UUID_RE

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_OBSOLETE_RE = re.compile(r"[0-9a-z]{41,}")
SALTED_SECRET_LENGTH = 40


class TokenFormatError(BadRequest):
    pass


class SaltError(TokenFormatError):
    pass


class ObsoleteToken(SaltError):
    """A v1 token: it has no UUID to name its issuer, so it cannot be salted."""


class AlreadySalted(SaltError):
    """A 40-character secret is a salted one: it cannot be salted again for a third cluster."""


@dataclass(frozen=True)
class V2Token:
    uuid: str
    secret: str

    def __str__(self) -> str:
        return f"v2/{self.uuid}/{self.secret}"

    @property
    def issuer(self) -> str:
        """The cluster that issued it: its authorization UUID's prefix."""
        return self.uuid[:5]

    @property
    def salted(self) -> bool:
        return is_salted(self.secret)


def new_secret() -> str:
    """50 base36 characters, like Arvados; never 40, which would read as a salted secret."""
    return "".join(secrets.choice(_BASE36) for _ in range(50))


def is_salted(secret: str) -> bool:
    return len(secret) == SALTED_SECRET_LENGTH


def parse_v2(token: str) -> V2Token:
    parts = token.split("/")
    if len(parts) < 3 or parts[0] != "v2" or not UUID_RE.fullmatch(parts[1]) or not parts[2]:
        raise TokenFormatError("not a v2 token (expected v2/<uuid>/<secret>)")
    return V2Token(parts[1], parts[2])


def try_parse_v2(token: str | None) -> V2Token | None:
    try:
        return parse_v2(token or "")
    except TokenFormatError:
        return None


def from_authorization_header(value: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>` (or `OAuth2 <token>`), else None."""
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme in ("Bearer", "OAuth2") and token.strip():
        return token.strip()
    return None


def secret_of(token: str) -> str:
    """The secret part of a v2 token; an old-style token is all secret."""
    parsed = try_parse_v2(token)
    return parsed.secret if parsed else token


def salt_secret(secret: str, cluster_id: str) -> str:
    return hmac.new(secret.encode(), cluster_id.encode(), hashlib.sha1).hexdigest()


def salt_token(token: str, cluster_id: str) -> str:
    parts = token.split("/")
    if len(parts) < 3 or parts[0] != "v2":
        if _OBSOLETE_RE.fullmatch(token):
            raise ObsoleteToken("v1 tokens cannot be used across clusters")
        raise SaltError("not a v2 token")
    uuid, secret = parts[1], parts[2]
    if uuid.startswith(cluster_id):
        return token  # the target issued it: send it unchanged (any 4th part dropped below)
    if is_salted(secret):
        raise AlreadySalted("this token was already salted for another cluster")
    return f"v2/{uuid}/{salt_secret(secret, cluster_id)}"


def salt_for(token: str, cluster_id: str) -> str:
    """The token to present to `cluster_id`: salted for it when it can be, else as it is (a token
    already salted, as a visitor's is, or an old-style one, which that cluster will judge)."""
    try:
        return salt_token(token, cluster_id)
    except SaltError:
        return token


def from_another_cluster(token: str | None, cluster_id: str) -> bool:
    """A token another cluster issued, or one salted for use away from its home."""
    parsed = try_parse_v2(token)
    return parsed is not None and (parsed.salted or parsed.issuer != cluster_id)
