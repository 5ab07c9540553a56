"""A local federation with its resolver, for tests: per-site modes and windows, pushes every second."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from archipelago.config import dump_config, load_config
from archipelago.files import write_private
from archipelago.resolver.config import ResolverConfig, dump_resolver_config
from archipelago.run.cluster import CONFIG_NAME
from archipelago.run.federation import init_federation
from archipelago.run.ports import free_port
from archipelago.run.processes import ClusterProcess
from archipelago.run.resolver import RESOLVER_DIR, ResolverProcess, init_resolver
from archipelago.sdk.client import ApiClient


@contextmanager
def resolver_federation(root: Path, modes: dict[str, str] | None = None, windows: dict[str, float] | None = None,
                        count: int = 3) -> Iterator[dict[str, Any]]:
    members = init_federation(root, count)
    config_path = init_resolver(root / RESOLVER_DIR, [(m.cluster_id, m.directory, m.api_url) for m in members],
                                modes=modes, windows=windows)
    for m in members:  # pushes every second, so tests need not wait for the default 10 s heartbeat
        path = m.directory / CONFIG_NAME
        config = load_config(path)
        config.resolver.heartbeat_seconds = 1
        write_private(path, dump_config(config))
    resolver = ResolverProcess(config_path).start()
    clusters = {m.cluster_id: ClusterProcess(m.directory) for m in members}
    try:
        for process in clusters.values():
            process.start()
        admins = {m.cluster_id: ApiClient(m.api_url, m.admin_token, insecure=True) for m in members}
        yield {"resolver": resolver, "clusters": clusters, "admins": admins, "root": root}
    finally:
        for process in [*clusters.values(), resolver]:
            process.stop()


@contextmanager
def resolver_process(root: Path, sites: dict[str, dict[str, Any]], **settings: Any) -> Iterator[ResolverProcess]:
    """A resolver process alone on loopback (its database in `root`) that knows these sites, in push
    mode unless a site says otherwise; `settings` are more of its configuration."""
    config = ResolverConfig.model_validate({
        "listen": f"127.0.0.1:{free_port()}", "database_url": f"sqlite:///{root / 'r.db'}",
        "defaults": {"mode": "push"}, "sites": sites, **settings})
    path = root / "resolver.yml"
    path.write_text(dump_resolver_config(config))
    process = ResolverProcess(path).start()
    try:
        yield process
    finally:
        process.stop()


def push_sites(keys: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Sites known by their keys only, whose URLs lead nowhere (they push; nobody polls them)."""
    return {site: {"url": f"https://{site}.invalid", "key": key} for site, key in keys.items()}
