"""Validating a token issued by another cluster, by asking that cluster (reference §5.3).

The token arrives salted for us. We ask its home `api_client_authorizations/current` and
`users/current` with `?remote=<us>`; the home accepts the salted secret only for those
identity lookups. The caller (auth/identity.py) mirrors the user here under the same UUID and
caches the token until `refreshes_at`, after which its home is asked again (so a revocation at
home takes effect here within the refresh period).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import ClusterConfig
from ..errors import ArchipelagoError, Unauthorized, Unavailable
from ..rpc import ApiConnection, ApiRequestError, Transport, Unreachable


class RemoteValidationError(ArchipelagoError):
    status = 401


@dataclass
class RemoteIdentity:
    authorization: dict[str, Any]
    user: dict[str, Any]


class RemoteTokenValidator:
    def __init__(self, config: ClusterConfig, timeout: float = 10.0,
                 transport: Callable[[str], Transport | None] = lambda cluster_id: None):
        self.config = config
        self._connections = {
            cluster_id: ApiConnection(remote.url, None, remote.insecure, timeout, transport(cluster_id))
            for cluster_id, remote in config.remote_clusters.items()
        }

    def knows(self, cluster_id: str) -> bool:
        return cluster_id in self._connections

    def _get(self, cluster_id: str, path: str, token: str) -> dict[str, Any]:
        try:
            return self._connections[cluster_id].request("GET", path, {"remote": self.config.cluster_id},
                                                         token=token)
        except Unreachable as exc:
            raise Unavailable(f"cluster {cluster_id} is unreachable to validate the token: {exc.cause}") from None
        except ApiRequestError as exc:
            if exc.status >= 500:
                raise Unavailable(f"cluster {cluster_id} failed to validate the token ({exc.status})") from None
            raise Unauthorized(f"cluster {cluster_id} rejected the token ({exc.status})") from None

    def validate(self, cluster_id: str, token: str) -> RemoteIdentity:
        authorization = self._get(cluster_id, "api_client_authorizations/current", token)
        if not str(authorization.get("uuid", "")).startswith(cluster_id):
            raise RemoteValidationError(f"cluster {cluster_id} answered for a token it did not issue")
        user = self._get(cluster_id, "users/current", token)
        if not str(user.get("uuid", "")).startswith(cluster_id):
            raise RemoteValidationError("clusters can only vouch for their own users")
        return RemoteIdentity(authorization, user)
