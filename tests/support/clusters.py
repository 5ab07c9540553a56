"""Cluster configurations, users and federations for tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from archipelago.config import ClusterConfig, dump_config, load_config, parse_config
from archipelago.run.cluster import CONFIG_NAME
from archipelago.run.federation import init_federation
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient

ROOT_TOKEN = "root-token-for-tests-0123456789"
USER_TOKEN = "v2/zzzzz-gj3su-0000000000user1/user1secret0123456789abcdef"


def cluster_config(volumes: list[dict[str, Any]], **overrides: Any) -> ClusterConfig:
    collections = {"blob_signing_key": "k" * 40, **overrides.pop("collections", {})}
    return parse_config({
        "cluster_id": "zzzzz",
        "system_root_token": ROOT_TOKEN,
        "collections": collections,
        "volumes": volumes,
        **overrides,
    })


def new_user(admin: ApiClient, name: str) -> ApiClient:
    name = f"{name}-{secrets.token_hex(4)}"  # the cluster is shared by the module's tests
    user = admin.users.create({"email": f"{name}@example.org", "username": name})
    row = admin.api_client_authorizations.create({"owner_uuid": user["uuid"]})
    return ApiClient(admin.base, f"v2/{row['uuid']}/{row['api_token']}", insecure=True)


REFRESH = 1.5  # seconds a validated remote token is trusted before its home is asked again


def start_federation(directory: Path, count: int, login_cluster: bool = False) -> tuple[list, list[ClusterProcess]]:
    """A real federation on loopback whose clusters re-validate visitors' tokens every REFRESH s."""
    members = init_federation(directory, count, login_cluster)
    for member in members:
        path = member.directory / CONFIG_NAME
        config = load_config(path)
        config.login.remote_token_refresh = REFRESH
        path.write_text(dump_config(config))
    return members, [ClusterProcess(m.directory).start() for m in members]


@contextmanager
def running_federation(directory: Path, count: int) -> Iterator[dict[str, Any]]:
    """`start_federation`, as {cluster id: admin ApiClient, ..., "processes": {cluster id: process}},
    stopped on exit."""
    members, processes = start_federation(directory, count)
    clients = {m.cluster_id: ApiClient(m.api_url, m.admin_token, insecure=True) for m in members}
    try:
        yield {**clients, "processes": dict(zip(clients, processes, strict=True))}
    finally:
        for process in processes:
            process.stop()
