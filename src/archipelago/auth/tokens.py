"""API tokens: v2 `v2/<authorization uuid>/<secret>`, presented as `Bearer` or `OAuth2`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ..ids import UUID_RE

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class TokenFormatError(ValueError):
    pass


@dataclass(frozen=True)
class V2Token:
    uuid: str
    secret: str

    def __str__(self) -> str:
        return f"v2/{self.uuid}/{self.secret}"


def new_secret() -> str:
    """50 base36 characters, like Arvados; never 40, which would read as a salted secret."""
    return "".join(secrets.choice(_BASE36) for _ in range(50))


def parse_v2(token: str) -> V2Token:
    parts = token.split("/")
    if len(parts) < 3 or parts[0] != "v2" or not UUID_RE.fullmatch(parts[1]) or not parts[2]:
        raise TokenFormatError("not a v2 token (expected v2/<uuid>/<secret>)")
    return V2Token(parts[1], parts[2])


def from_authorization_header(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme in ("Bearer", "OAuth2") and token.strip():
        return token.strip()
    return None
