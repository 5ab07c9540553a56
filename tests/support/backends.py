"""Backends built in this process on SQLite: one cluster's local engine, or a home cluster's
federation router whose peer is another in-process cluster reached through its real API app."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archipelago.api.app import create_app
from archipelago.auth.remote import RemoteTokenValidator
from archipelago.backend.interface import Backend, Caller
from archipelago.backend.local import LocalBackend
from archipelago.config import ClusterConfig, parse_config
from archipelago.db.session import make_engine, migrate, session_factory
from archipelago.federation.remote import RemoteBackend
from archipelago.federation.router import FederatedBackend
from archipelago.sdk import ApiClient

from .asgi import AsgiTransport


def cluster_config(cluster_id: str, directory: Path, peers: tuple[str, ...] = ()) -> ClusterConfig:
    return parse_config({
        "cluster_id": cluster_id,
        "system_root_token": f"root-{cluster_id}-0123456789",
        "database_url": f"sqlite:///{directory / (cluster_id + '.db')}",
        "collections": {"blob_signing_key": cluster_id * 8},
        "volumes": [{"driver": "directory", "root": str(directory / f"keep-{cluster_id}")}],
        "api": {"listen": f"127.0.0.1:{20000 + sum(map(ord, cluster_id))}"},
        "remote_clusters": {peer: {"host": f"{peer}.test:443", "insecure": True} for peer in peers},
    })


def local_backend(config: ClusterConfig, validator: RemoteTokenValidator | None = None) -> LocalBackend:
    engine = make_engine(config.database_url)
    migrate(engine)
    backend = LocalBackend(config, session_factory(engine), validator)
    backend.bootstrap()
    return backend


@dataclass
class Site:
    """One cluster as the tests use it: its backend (what its API serves) and an admin."""

    cluster_id: str
    local: LocalBackend
    backend: Backend
    admin: Caller
    apps: dict[str, Any] = field(default_factory=dict)

    def new_user(self, name: str, admin: bool = False) -> Caller:
        """A user of this cluster and a caller holding a fresh token of theirs."""
        name = f"{name}-{secrets.token_hex(8)}"  # sites are shared by a module's cases (and hypothesis' examples)
        record = self.local.create(self.admin, "users", {"username": name, "email": f"{name}@example.org",
                                                         "is_admin": admin})
        return self.backend.authenticate(self.local.create_token(record["uuid"]))

    def client(self, caller: Caller) -> ApiClient:
        """The SDK on this cluster's API app, in process."""
        return ApiClient(f"https://{self.cluster_id}.test", caller.token, transport=AsgiTransport(self.apps["self"]))


def single_cluster(directory: Path) -> Site:
    config = cluster_config("z1111", directory)
    local = local_backend(config)
    site = Site("z1111", local, local, local.authenticate(config.system_root_token))
    site.apps["self"] = create_app(config, local)
    return site


def federation(directory: Path, cluster_ids: tuple[str, ...] = ("z1111", "z2222")) -> dict[str, Site]:
    """Clusters that federate with each other through their API apps, in this process."""
    apps: dict[str, Any] = {}

    def transport(cluster_id: str) -> AsgiTransport:
        return _Lazy(apps, cluster_id)  # type: ignore[return-value]

    sites = {}
    for cluster_id in cluster_ids:
        peers = tuple(c for c in cluster_ids if c != cluster_id)
        config = cluster_config(cluster_id, directory, peers)
        local = local_backend(config, RemoteTokenValidator(config, transport=transport))
        remotes = {peer: RemoteBackend(peer, config.remote_clusters[peer].url, cluster_id, insecure=True,
                                       transport=transport(peer)) for peer in peers}
        backend = FederatedBackend(local, remotes, cluster_id)
        apps[cluster_id] = create_app(config, backend)
        sites[cluster_id] = Site(cluster_id, local, backend, local.authenticate(config.system_root_token),
                                 {"self": apps[cluster_id]})
    return sites


class _Lazy(AsgiTransport):
    """Resolves the peer's app when first called: the apps are made one after another."""

    def __init__(self, apps: dict[str, Any], cluster_id: str):
        self._apps, self._cluster_id = apps, cluster_id

    @property  # type: ignore[override]
    def app(self) -> Any:
        return self._apps[self._cluster_id]
