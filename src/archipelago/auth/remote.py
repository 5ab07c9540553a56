"""Validating a token issued by another cluster, by asking that cluster (reference §5.3).

The token arrives salted for us. We ask its home `api_client_authorizations/current` and
`users/current` with `?remote=<us>`; the home accepts the salted secret only for those
identity lookups. The user is mirrored here under the same UUID, and the token is cached as a
local row until `refreshes_at`, after which its home is asked again (so a revocation at home
takes effect here within the refresh period).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import urllib3

from ..config import ClusterConfig


class RemoteValidationError(Exception):
    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status


@dataclass
class RemoteIdentity:
    authorization: dict[str, Any]
    user: dict[str, Any]


class RemoteTokenValidator:
    def __init__(self, config: ClusterConfig, timeout: float = 10.0):
        self.config = config
        self._pools = {
            cluster_id: urllib3.PoolManager(cert_reqs="CERT_NONE" if remote.insecure else "CERT_REQUIRED",
                                            retries=False, timeout=urllib3.Timeout(connect=timeout, read=timeout))
            for cluster_id, remote in config.remote_clusters.items()
        }

    def knows(self, cluster_id: str) -> bool:
        return cluster_id in self.config.remote_clusters

    def _get(self, cluster_id: str, path: str, token: str) -> dict[str, Any]:
        remote = self.config.remote_clusters[cluster_id]
        url = f"{remote.url}/arvados/v1/{path}?remote={self.config.cluster_id}"
        try:
            resp = self._pools[cluster_id].request("GET", url, headers={"Authorization": f"Bearer {token}"})
        except urllib3.exceptions.HTTPError as exc:
            raise RemoteValidationError(f"cluster {cluster_id} is unreachable to validate the token: {exc}",
                                        status=503) from None
        if resp.status >= 500:
            raise RemoteValidationError(f"cluster {cluster_id} failed to validate the token ({resp.status})",
                                        status=503)
        if resp.status != 200:
            raise RemoteValidationError(f"cluster {cluster_id} rejected the token ({resp.status})")
        return json.loads(resp.data)

    def validate(self, cluster_id: str, token: str) -> RemoteIdentity:
        authorization = self._get(cluster_id, "api_client_authorizations/current", token)
        if not str(authorization.get("uuid", "")).startswith(cluster_id):
            raise RemoteValidationError(f"cluster {cluster_id} answered for a token it did not issue")
        user = self._get(cluster_id, "users/current", token)
        if not str(user.get("uuid", "")).startswith(cluster_id):
            raise RemoteValidationError("clusters can only vouch for their own users")
        return RemoteIdentity(authorization, user)
