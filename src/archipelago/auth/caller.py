"""Who is asking (a Caller: the user behind a token) and what they are answered with (a Record):
the vocabulary of every layer from auth/ up, the Backend interface's included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]  # an API record, as rendered: what the REST API sends


@dataclass(frozen=True)
class Caller:
    """Who is asking: the user behind the token, and the exact token string (signatures use it)."""

    user_uuid: str
    token: str
    is_admin: bool = False
    authorization_uuid: str = ""
    scopes: tuple[str, ...] = ("all",)
    via: str | None = None  # the cluster that forwarded this request, if any
    container_uuid: str | None = None  # a container running on this cluster, acting with its own token
