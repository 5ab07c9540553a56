"""The cluster's dispatcher as a service: `archi dispatch`, or a thread of `archi cluster up`."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import time
from pathlib import Path

from ...config import ClusterConfig
from ...sdk.client import ApiClient
from .base import ComputeBackend
from .local import LocalProcesses
from .loop import DispatchLoop
from .slurm import SlurmJobs

LOG_DAYS = 7


def executor_env(config: ClusterConfig) -> dict[str, str]:
    """How an executor reaches this cluster's API: as the dispatcher (it asks for the container's
    own token, and acts with that)."""
    insecure = "1" if config.api.tls_cert else "0"  # `cluster init` makes a self-signed certificate
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARCHI_", "ARVADOS_"))}
    return {**env, "ARCHI_API_HOST": config.api.url, "ARCHI_API_TOKEN": config.system_root_token,
            "ARCHI_API_HOST_INSECURE": insecure, "ARCHI_CONTAINER_RUNTIME": config.containers.runtime,
            **({"DOCKER_HOST": config.containers.docker_host} if config.containers.docker_host else {}),
            **({"ARCHI_PODMAN_STORAGE": config.containers.podman_storage} if config.containers.podman_storage else {}),
            **({"ARCHI_WORK_DIR": str(config.containers.work_dir)} if config.containers.work_dir else {}),
            **({"ARCHI_HOST_PATH": ":".join(config.containers.host_path)} if config.containers.host_path else {}),
            "ARCHI_SANDBOX_UIDS": config.containers.sandbox_uids, "ARCHI_MAX_DISK": str(config.containers.max_disk),
            "ARCHI_MIN_FREE_DISK": str(config.containers.min_free_disk),
            "ARCHI_IMAGE_USER": "1" if config.containers.image_user else "0"}


def state_directory(config: ClusterConfig) -> Path:
    """The dispatcher's pid files and executor logs: this cluster's alone (two clusters with the same
    id on one host, as tests and demos make, shared one before), and the same across its restarts
    (a restarted dispatcher adopts what its pid files name)."""
    instance = hashlib.sha256(config.system_root_token.encode()).hexdigest()[:12]
    parent = Path(config.containers.work_dir or tempfile.gettempdir())
    return parent / f"archipelago-dispatch-{config.cluster_id}-{instance}"


def _prune_logs(state: Path) -> None:
    """Executor logs older than LOG_DAYS go (their containers' own logs are in Keep)."""
    cutoff = time.time() - LOG_DAYS * 86400
    for log in state.glob("*.log"):
        with contextlib.suppress(OSError):
            if log.stat().st_mtime < cutoff:
                log.unlink()


def dispatcher(config: ClusterConfig) -> DispatchLoop:
    """The dispatcher the config names: local processes or Slurm jobs."""
    api = ApiClient(config.api.url, config.system_root_token, insecure=bool(config.api.tls_cert))
    state = state_directory(config)
    _prune_logs(state)
    backend: ComputeBackend
    if config.containers.dispatcher == "slurm":
        backend = SlurmJobs(state, executor_env(config), config.containers.slurm_partition)
    else:
        cores = config.containers.max_cores or os.cpu_count() or 1
        ram = config.containers.max_ram or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        backend = LocalProcesses(state, executor_env(config), cores, ram)
    return DispatchLoop(api, backend, config.containers.poll_seconds)


def start_in_thread(config: ClusterConfig) -> DispatchLoop:
    loop = dispatcher(config)
    threading.Thread(target=loop.run_forever, name="dispatch", daemon=True).start()
    return loop
