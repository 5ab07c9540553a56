"""Who may store blocks here: the system root token, or a token the cluster itself accepts (its
user's, active and unexpired; visitors' salted tokens validated at their home). As in Arvados, any
valid token may PUT, whatever its scopes; a made-up one stores nothing (401) and is refused before
its body is read, so a stranger who can reach keepstore gets neither storage nor a full disk.

Where the answer comes from depends on how keepstore runs:

- inside `archi cluster up`: the cluster's own Identity.authenticate (the one token validator),
  injected as a callable. It caches callers itself and forgets them the moment a token is revoked,
  so nothing is cached here.
- on its own (`archi keepstore --config`): the cluster's API, asked `api_client_authorizations/current`
  as Arvados' keepstore asks its controller. Valid answers are kept TOKEN_CACHE_SECONDS so a stream
  of 64 MiB PUTs costs one round trip, not one per block.
- with no cluster at all (`archi keepstore --data-dir`): only its own root token.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

from ..config import ClusterConfig
from ..errors import Unauthorized, Unavailable
from ..rpc import ApiConnection, ApiRequestError, Transport, Unreachable, Urllib3Transport
from .http import run

# validates a token or raises Unauthorized (401) / Unavailable (503); may block (database, network)
Authenticate = Callable[[str], object]

# as long as the API trusts a validated token without asking its database again (auth/identity.py):
# a token revoked through the API stops storing blocks at a standalone keepstore within this
TOKEN_CACHE_SECONDS = 10.0
MAX_CACHED = 10_000  # distinct tokens remembered; beyond it the cache starts over


class TokenCheck:
    def __init__(self, root_token: str, authenticate: Authenticate, cache_seconds: float = 0.0):
        self._root = root_token.encode()
        self._authenticate = authenticate
        self._cache_seconds = cache_seconds
        self._valid_until: dict[str, tuple[float, str]] = {}  # token -> (when its validation ends, its holder)

    async def require(self, token: str | None) -> str:
        """Who holds `token` (a user UUID; SYSTEM for the root token; the token itself where the
        validator does not say), if it may store blocks here; Unauthorized (or Unavailable) otherwise."""
        if token is None:
            raise Unauthorized("a token is needed to store blocks")
        if hmac.compare_digest(token.encode(), self._root):
            return SYSTEM
        cached = self._valid_until.get(token)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        holder = holder_of(await run(self._authenticate, token), token)
        if self._cache_seconds > 0:
            if len(self._valid_until) >= MAX_CACHED:
                self._valid_until.clear()
            self._valid_until[token] = (time.monotonic() + self._cache_seconds, holder)
        return holder


SYSTEM = ""  # the cluster itself (its root token): never held to a user's share of the PUT slots


def holder_of(validated: object, token: str) -> str:
    """The user a validator's answer names (a Caller, or the API's token record)."""
    user = getattr(validated, "user_uuid", None) or (validated.get("user_uuid") if isinstance(validated, dict)
                                                     else None)
    return str(user) if user else token


def api_authenticator(config: ClusterConfig, transport: Transport | None = None) -> Authenticate:
    """Validation by the cluster's API (`api.url` of the configuration), for a keepstore running on
    its own. The cluster's self-signed certificate (`api.tls_cert`) is trusted when it serves its own URL."""
    if transport is None:
        own_cert = config.api.tls_cert if config.api.external_url is None else None
        transport = Urllib3Transport(timeout=10.0, ca_certs=str(own_cert) if own_cert else None)
    connection = ApiConnection(config.api.url, transport=transport)

    def authenticate(token: str) -> dict[str, object]:
        try:
            return connection.request("GET", "api_client_authorizations/current", token=token)
        except Unreachable as exc:
            raise Unavailable(f"cannot check the token: the cluster's API ({connection.host}) is unreachable: "
                              f"{exc.cause}") from None
        except ApiRequestError as exc:
            if exc.status >= 500:
                raise Unavailable(f"cannot check the token: the cluster's API answered {exc.status}") from None
            raise Unauthorized(f"invalid, expired or revoked token (the cluster's API says: {exc.message})") from None

    return authenticate


def no_cluster(token: str) -> None:
    """For a keepstore that belongs to no cluster (`--data-dir`): no token but its own root token."""
    raise Unauthorized("this keepstore serves no cluster: only the token it was started with (--token) stores blocks")
