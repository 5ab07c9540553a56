"""A resolver beside a local federation: its configuration (every cluster a site, with a key of its
own shared with the resolver), the clusters told where it is, and the resolver as a child process."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from pathlib import Path

from ..config import ResolverLinkConfig, dump_config, load_config
from ..files import private_directory, write_private
from ..resolver.config import ResolverConfig, SiteConfig, WindowSettings, dump_resolver_config, load_resolver_config
from .cluster import CONFIG_NAME
from .ports import free_port, wait_for_http
from .processes import ChildProcess

RESOLVER_CONFIG = "resolver.yml"
RESOLVER_DIR = "resolver"  # beside the clusters of a local federation


def init_resolver(directory: Path, members: Iterable[tuple[str, Path, str]], port: int | None = None,
                  modes: dict[str, str] | None = None, windows: dict[str, float] | None = None) -> Path:
    """Write `directory/resolver.yml` for the clusters (cluster id, directory, API URL) and tell each
    cluster its resolver and its key; a cluster whose mode is "poll" does not push. Returns the path."""
    private_directory(directory)
    url = f"http://127.0.0.1:{port or free_port()}"
    sites = {}
    for cluster_id, cluster_dir, api_url in members:
        key = secrets.token_urlsafe(32)
        mode = (modes or {}).get(cluster_id)
        sites[cluster_id] = SiteConfig.model_validate({"url": api_url, "key": key, "insecure": True, "mode": mode})
        cluster_path = Path(cluster_dir) / CONFIG_NAME
        cluster = load_config(cluster_path)
        cluster.resolver = ResolverLinkConfig(urls=[url], key=key, push=mode != "poll")
        write_private(cluster_path, dump_config(cluster))
    config = ResolverConfig(listen=url.split("://", 1)[1], database_url="sqlite:///resolver.db",
                            defaults=WindowSettings.model_validate(windows or {}), sites=sites)
    path = Path(directory) / RESOLVER_CONFIG
    write_private(path, dump_resolver_config(config))  # it holds every site's key
    return path


class ResolverProcess(ChildProcess):
    """`archi resolver --config FILE` in a child process."""

    def __init__(self, config_path: Path):
        self.config_path = Path(config_path)
        self.config = load_resolver_config(self.config_path)
        self.url = f"http://{self.config.listen}"
        self.log_path = self.config_path.parent / "resolver.log"

    def start(self) -> ResolverProcess:
        wait_for_http(self.url + "/_health/ping", process=self._spawn("resolver", "--config", str(self.config_path)))
        return self


def local_resolver(directory: Path) -> ResolverProcess | None:
    """The resolver `init_federation` wrote beside the clusters under `directory`, if any."""
    path = Path(directory) / RESOLVER_DIR / RESOLVER_CONFIG
    return ResolverProcess(path) if path.exists() else None
