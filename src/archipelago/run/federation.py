"""A local federation: N clusters on loopback that list each other as remotes (`archi federation up`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import RemoteClusterConfig, dump_config, load_config
from ..files import write_private
from .cluster import CONFIG_NAME, init_cluster
from .resolver import RESOLVER_DIR, init_resolver


@dataclass
class FederationMember:
    cluster_id: str
    directory: Path
    api_url: str
    admin_token: str


def cluster_ids(count: int) -> list[str]:
    if not 1 <= count <= 9:
        raise ValueError("a local federation has 1 to 9 clusters")
    return [f"z{n}{n}{n}{n}" for n in range(1, count + 1)]


def init_federation(directory: Path, count: int, login_cluster: bool = False) -> list[FederationMember]:
    """Write one cluster per ID under `directory`, each listing all the others as remotes; with
    `login_cluster`, the first cluster issues every user and token of the federation."""
    directory = Path(directory)
    members = []
    for cluster_id in cluster_ids(count):
        result = init_cluster(directory / cluster_id, cluster_id)
        members.append(FederationMember(cluster_id, directory / cluster_id, result.config.api.url,
                                        result.admin_token))
    for member in members:
        path = member.directory / CONFIG_NAME
        config = load_config(path)
        config.remote_clusters = {
            other.cluster_id: RemoteClusterConfig(host=other.api_url.split("://", 1)[1], insecure=True)
            for other in members if other is not member
        }
        if login_cluster:
            config.login.login_cluster = members[0].cluster_id
        write_private(path, dump_config(config))
    # and a resolver every cluster pushes to (`archi federation up` runs it: run/resolver.py)
    init_resolver(directory / RESOLVER_DIR, [(m.cluster_id, m.directory, m.api_url) for m in members])
    return members
