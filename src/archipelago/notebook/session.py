"""Starting and stopping a notebook: a container request whose container runs JupyterLab on a unix
socket (executor/published.py), its base URL the request's proxy path on the cluster's API server.

What the container has: the datasets at the targets asked for (read-only collection mounts, read on
demand), `/out` for notebooks (its output: saved as a collection when it stops), `/scratch` (not
saved; home, Jupyter's runtime files and kernels' state live there), no network unless `api=True`."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import ArchipelagoError, Unprocessable
from ..executor.published import PUBLISHED_TARGET
from ..ids import PDH_RE, UUID_RE
from ..rpc import ApiConnection
from ..sdk.client import ApiClient

NOTEBOOKS = "/out"
SCRATCH = "/scratch"
DEFAULT_IDLE_MINUTES = 30.0
KIND = "archi-notebook"  # properties.type of a notebook's request


def proxy_prefix(request_uuid: str) -> str:
    """The path on the cluster's API server under which the notebook is served."""
    return f"/arvados/v1/container_requests/{request_uuid}/proxy/"


@dataclass(frozen=True)
class NotebookSession:
    url: str  # the lab, on the API server of the cluster it runs at (no token in it)
    request_uuid: str
    cluster_id: str

    def login_url(self, token: str) -> str:
        """The URL with a one-time `?token=` handoff (a browser keeps a cookie for the proxy path after
        it); the token is the user's own, salted for the notebook's cluster if that is not home."""
        return f"{self.url}?token={quote(token, safe='')}"


def handoff_scopes(request_uuid: str) -> list[str]:
    """What a token handed over in a notebook's URL may do: open that notebook, at its cluster too (whose
    API asks a visitor's home who she is), and nothing else."""
    return [f"GET /arvados/v1/container_requests/{request_uuid}", "GET /arvados/v1/users/current"]


def _collection_mount(source: str) -> dict[str, Any]:
    pdh_or_uuid, _, path = source.partition("/")
    if PDH_RE.fullmatch(pdh_or_uuid):
        mount: dict[str, Any] = {"kind": "collection", "portable_data_hash": pdh_or_uuid}
    elif UUID_RE.fullmatch(pdh_or_uuid):
        mount = {"kind": "collection", "uuid": pdh_or_uuid}
    else:
        raise Unprocessable(f"mount source {source!r} is neither a collection UUID nor a PDH (optionally /path)")
    if path:
        mount["path"] = "/" + path.strip("/")
    return mount


def _command(request_uuid: str, idle_minutes: float) -> list[str]:
    return ["archi", "notebook", "serve", "--socket", f"{PUBLISHED_TARGET}/http.sock",
            "--base-url", proxy_prefix(request_uuid), "--root", NOTEBOOKS, "--idle-seconds", str(idle_minutes * 60)]


def _cluster_url(client: ApiClient, cluster_id: str) -> str:
    """The API URL of the cluster the notebook runs at (this one, or one of its remote clusters)."""
    config = client.config()
    if cluster_id == config.get("ClusterID"):
        return client.base
    remote = (config.get("RemoteClusters") or {}).get(cluster_id) or {}
    host = remote.get("Host")
    if not host:
        raise Unprocessable(f"cluster {cluster_id} is not one this cluster federates with")
    return f"{remote.get('Scheme') or 'https'}://{host}"


def start(client: ApiClient, cluster_id: str | None = None, mounts: dict[str, str] | None = None,
          idle_minutes: float = DEFAULT_IDLE_MINUTES, ram: int = 2 << 30, vcpus: int = 1, api: bool = False,
          name: str | None = None) -> NotebookSession:
    """Start a notebook at `cluster_id` (default: the client's cluster) with `mounts` (target ->
    collection UUID or PDH, optionally `/path` inside it) read-only. Returns at once; the lab answers
    once its container runs (`wait_ready`)."""
    if not (math.isfinite(idle_minutes) and idle_minutes > 0):  # NaN or infinity: a lab that never stops
        raise Unprocessable("idle_minutes must be a positive number")
    home = client.config().get("ClusterID")
    cluster_id = cluster_id or home
    wanted: dict[str, Any] = {NOTEBOOKS: {"kind": "tmp", "capacity": 4 << 30},
                              SCRATCH: {"kind": "tmp", "capacity": 4 << 30},
                              PUBLISHED_TARGET: {"kind": "tmp", "capacity": 1 << 20}}
    for target, source in (mounts or {}).items():
        if target in wanted:
            raise Unprocessable(f"{target} is the notebook's own; mount datasets elsewhere (/data, ...)")
        wanted[target] = _collection_mount(source)
    attrs = {"name": name or "notebook", "command": ["true"], "container_image": None, "output_path": NOTEBOOKS,
             "cwd": NOTEBOOKS, "mounts": wanted, "state": "Uncommitted", "priority": 500, "use_existing": False,
             "environment": {"HOME": SCRATCH, "JUPYTER_RUNTIME_DIR": f"{SCRATCH}/.jupyter/runtime",
                             "JUPYTER_DATA_DIR": f"{SCRATCH}/.jupyter/data", "IPYTHONDIR": f"{SCRATCH}/.ipython"},
             "runtime_constraints": {"ram": ram, "vcpus": vcpus, "API": api},
             "properties": {"type": KIND},
             "output_name": f"notebooks of {name or 'notebook'}"}
    params = {"cluster_id": cluster_id} if cluster_id and cluster_id != home else None
    created = client.request("POST", "container_requests", params=params, body={"container_request": attrs})
    uuid = created["uuid"]
    client.container_requests.update(uuid, {"command": _command(uuid, idle_minutes), "state": "Committed"})
    return NotebookSession(_cluster_url(client, uuid[:5]) + proxy_prefix(uuid) + "lab", uuid, uuid[:5])


def wait_ready(client: ApiClient, session: NotebookSession, token: str, limit: float = 120.0) -> None:
    """Wait (bounded) until the lab answers through the proxy; raises with the last answer."""
    connection = ApiConnection(session.url.split("/arvados/v1/", 1)[0], token, client.insecure)
    deadline, last = time.monotonic() + limit, ""
    while time.monotonic() < deadline:
        response = connection.transport.request("GET", session.url.removesuffix("lab") + "api/status", None,
                                                {"Authorization": f"Bearer {token}"})
        if response.status == 200:
            return
        last = f"HTTP {response.status}: {response.data[:200].decode('utf-8', 'replace')}"
        state = client.container_requests.get(session.request_uuid)["state"]
        if state == "Final":
            raise ArchipelagoError(f"notebook {session.request_uuid} ended before it answered ({last})", 503)
        time.sleep(0.5)
    raise ArchipelagoError(f"notebook {session.request_uuid} did not answer within {limit:.0f} s ({last})", 503)


def stop(client: ApiClient, request_uuid: str, token: str | None = None, grace: float = 60.0) -> dict[str, Any]:
    """Stop a notebook so that its notebooks are saved: a lab that answers is asked to shut down
    (through the proxy, with the user's token) and given `grace` seconds to end; one that does not
    answer (still starting, or wedged) is cancelled (priority 0: nothing more is saved)."""
    request = client.container_requests.get(request_uuid)
    if request["state"] == "Final":
        return request
    base = _cluster_url(client, request_uuid[:5]) + proxy_prefix(request_uuid)
    transport = ApiConnection(base, token or client.token, client.insecure).transport
    headers = {"Authorization": f"Bearer {token or client.token}"}
    try:
        ready = transport.request("GET", base + "api/status", None, headers).status == 200
        if ready and transport.request("POST", base + "api/shutdown", None, headers).status < 300:
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                request = client.container_requests.get(request_uuid)
                if request["state"] == "Final":
                    return request
                time.sleep(0.5)
    except ConnectionError:
        pass
    return client.container_requests.update(request_uuid, {"priority": 0})


def launch_mode(home: ApiClient, plan: Any, mount: str = "/data", idle_minutes: float = DEFAULT_IDLE_MINUTES,
                **_: Any) -> dict[str, Any]:
    """A notebook as a launch mode of the resolver (`register_mode("notebook", launch_mode)` in
    resolver/launch.py): the plan's dataset mounted read-only at `mount`, at the plan's site."""
    session = start(home, plan.site, {mount: plan.pdh or plan.collection_uuid}, idle_minutes=idle_minutes,
                    name=f"notebook on {plan.identifier}")
    return {"mode": "notebook", "url": session.url, "request": session.request_uuid, "cluster": session.cluster_id}
