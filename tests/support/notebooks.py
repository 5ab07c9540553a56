"""A cluster and notebooks for the notebook tests (a real JupyterLab in a bubblewrap container)."""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from archipelago.sdk import ApiClient

REASON = "JupyterLab (pip install 'archipelago[notebook]') and bubblewrap are needed"
available = pytest.mark.skipif(importlib.util.find_spec("jupyterlab") is None or shutil.which("bwrap") is None,
                               reason=REASON)


def sqlite_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from archipelago.run.cluster import init_cluster
    from archipelago.run.processes import ClusterProcess

    directory = tmp_path_factory.mktemp("cluster")
    init_cluster(directory, "z1111", f"sqlite:///{directory / 'archipelago.db'}")
    with ClusterProcess(directory) as process:
        yield process


def wait_final(client: ApiClient, request_uuid: str, limit: float = 120) -> dict[str, Any]:
    """The request once Final (bounded wait; the caller asserts on what it finds)."""
    deadline = time.monotonic() + limit
    request = client.container_requests.get(request_uuid)
    while request["state"] != "Final" and time.monotonic() < deadline:
        time.sleep(0.5)
        request = client.container_requests.get(request_uuid)
    return request


def proxy_base(session: Any) -> str:
    return session.url.removesuffix("lab")
