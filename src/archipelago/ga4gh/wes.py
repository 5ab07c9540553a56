"""WES 1.1 over the Backend: a run is a submitted CWL runner — a container request on this cluster
whose container runs `archi run` (cwl/submit.py's shape; its steps go where `arv:ClusterTarget`
sends them). The run id is that request's UUID; its state comes from the request and its
container; its outputs from the runner's report in the output collection; its tasks are the step
requests (those at home by `requesting_container_uuid`, those elsewhere from the report)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .. import __version__
from ..backend.interface import Backend, Caller, ListParams, Record
from ..errors import ArchipelagoError, BadRequest, NotFound
from ..ids import UUID_RE
from ..keep.client import KeepClient
from .files import entry, read_all, tree_of

MOUNT = "/var/lib/archi-run"  # the run's collection (attachments, job.json) in the runner's container
REPORT = "report.json"  # what `archi run --json` prints, saved as the runner's output
RUN_TYPE = "archi-run"  # properties.type of a runner's container request (archi run --submit, WES)
CWL_VERSIONS = ["v1.0", "v1.1", "v1.2"]
ENGINE = "archi-cwl-runner"
DEFAULT_PAGE = 100
MAX_PAGE = 1000
REQUEST_INFIX = "xvhdp"
MAX_READ = 8 << 20  # a runner's report or a run's job.json, read into the API server: no more than this


def engine_versions() -> list[str]:
    try:
        return [f"{__version__} (cwltool {version('cwltool')})"]
    except PackageNotFoundError:  # pragma: no cover - cwltool is a dependency
        return [__version__]


def run_state(request: Record, container: Record | None) -> str:
    """WES state of a run (or a task) from its request and container (reference §5.1)."""
    cancelling = request.get("priority") == 0
    if container is None:
        if request["state"] == "Final":
            return "CANCELED" if cancelling else "SYSTEM_ERROR"
        return "CANCELED" if cancelling and request["state"] == "Committed" else "QUEUED"
    state = container["state"]
    if state in ("Queued", "Locked", "Running") and cancelling:
        return "CANCELING"
    if state == "Complete":
        return "COMPLETE" if container.get("exit_code") == 0 else "EXECUTOR_ERROR"
    if state == "Cancelled":
        return "CANCELED" if cancelling or not (container.get("runtime_status") or {}).get("error") \
            else "SYSTEM_ERROR"
    return {"Queued": "QUEUED", "Locked": "INITIALIZING", "Running": "RUNNING"}.get(state, "UNKNOWN")


def page(params_size: str | None, token: str | None) -> tuple[int, int]:
    """(offset, size) from WES page_size and page_token (an offset this service handed out)."""
    try:
        size = int(params_size) if params_size not in (None, "") else DEFAULT_PAGE
        offset = int(token) if token not in (None, "") else 0
    except ValueError:
        raise BadRequest("page_size must be a whole number and page_token one this service gave") from None
    if not 1 <= size <= 1 << 62 or not 0 <= offset <= 1 << 62:
        raise BadRequest("page_size must be at least 1, and page_token one this service gave")
    return offset, min(size, MAX_PAGE)


@dataclass
class Wes:
    backend: Backend
    keep: Callable[[], KeepClient]
    cluster_id: str
    peers: list[str]

    # ---------------------------------------------------------------- service-info
    def service_info(self, base: str, caller: Caller | None) -> Record:
        counts: dict[str, int] = {}
        if caller is not None:
            for run in self._runs(caller, 0, MAX_PAGE)[0]:
                counts[run["state"]] = counts.get(run["state"], 0) + 1
        clusters = sorted({self.cluster_id, *self.peers})
        return {
            "id": f"org.archipelago.{self.cluster_id}.wes", "name": f"Archipelago WES on cluster {self.cluster_id}",
            "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
            "description": "CWL workflows run by archi-cwl-runner; each step on the cluster its arv:ClusterTarget "
                           "names (the federation's clusters are in tags.federation)",
            "organization": {"name": f"Archipelago cluster {self.cluster_id}", "url": base},
            "version": __version__,
            "workflow_type_versions": {"CWL": {"workflow_type_version": CWL_VERSIONS}},
            "supported_wes_versions": ["1.1.0"],
            "supported_filesystem_protocols": ["keep", "http", "https"],
            "workflow_engine_versions": {ENGINE: {"workflow_engine_version": engine_versions()}},
            "default_workflow_engine_parameters": [{"name": "reuse", "type": "boolean", "default_value": "true"},
                                                   {"name": "prestage", "type": "boolean", "default_value": "false"}],
            "system_state_counts": counts,
            "auth_instructions_url": f"{base}/ga4gh/wes/v1/service-info#bearer-token-of-this-cluster",
            "tags": {"cluster_id": self.cluster_id, "federation": ",".join(clusters),
                     "auth": "Authorization: Bearer <an Arvados API token of this federation>"},
        }

    # ---------------------------------------------------------------- runs
    def _runs(self, caller: Caller, offset: int, size: int) -> tuple[list[Record], bool]:
        params = ListParams(filters=[["properties.type", "=", RUN_TYPE]], order=["created_at desc", "uuid desc"],
                            limit=size + 1, offset=offset, count="none")
        items = self.backend.this_cluster().list(caller, "container_requests", params)["items"]
        containers = self._containers(caller, [i["container_uuid"] for i in items[:size] if i.get("container_uuid")])
        runs = [{"run_id": i["uuid"], "state": run_state(i, containers.get(i.get("container_uuid") or "")),
                 "tags": self._request(i)["tags"],
                 **_times(containers.get(i.get("container_uuid") or ""))} for i in items[:size]]
        return runs, len(items) > size

    def _containers(self, caller: Caller, uuids: list[str]) -> dict[str, Record]:
        if not uuids:
            return {}
        params = ListParams(filters=[["uuid", "in", uuids]], limit=len(uuids), count="none")
        return {c["uuid"]: c for c in self.backend.list(caller, "containers", params)["items"]}

    def list_runs(self, caller: Caller, page_size: str | None, page_token: str | None) -> Record:
        offset, size = page(page_size, page_token)
        runs, more = self._runs(caller, offset, size)
        return {"runs": runs, "next_page_token": str(offset + size) if more else ""}

    def _run(self, caller: Caller, run_id: str) -> tuple[Record, Record | None]:
        if not UUID_RE.fullmatch(run_id) or run_id[6:11] != REQUEST_INFIX:
            raise NotFound(f"no workflow run {run_id!r}: a run id is the UUID of its runner's container request")
        request = self.backend.get(caller, "container_requests", run_id)
        if (request.get("properties") or {}).get("type") != RUN_TYPE:
            raise NotFound(f"{run_id} is a container request, not a workflow run")
        container = None
        if request.get("container_uuid"):
            container = self.backend.get(caller, "containers", request["container_uuid"])
        return request, container

    def status(self, caller: Caller, run_id: str) -> Record:
        request, container = self._run(caller, run_id)
        return {"run_id": run_id, "state": run_state(request, container)}

    def cancel(self, caller: Caller, run_id: str) -> Record:
        request, _ = self._run(caller, run_id)
        if request["state"] != "Final" and request.get("priority") != 0:
            self.backend.update(caller, "container_requests", run_id, {"priority": 0})
        return {"run_id": run_id}

    def run_log(self, caller: Caller, run_id: str, base: str) -> Record:
        request, container = self._run(caller, run_id)
        report = self._report(caller, request)
        log = self._log(request, container, base)
        log["system_logs"] = [*log.get("system_logs", []), *[str(f) for f in report.get("failures", [])]]
        asked = {**self._request(request), "workflow_params": self._params(caller, request)}
        return {"run_id": run_id, "request": asked,
                "state": run_state(request, container), "run_log": log,
                "task_logs_url": f"{base}/ga4gh/wes/v1/runs/{run_id}/tasks",
                "outputs": report.get("outputs") or {}}

    @staticmethod
    def _request(request: Record) -> Record:
        properties = request.get("properties") or {}
        wes = properties.get("wes") or {}
        return {"workflow_url": wes.get("workflow_url") or properties.get("workflow") or "",
                "workflow_type": "CWL", "workflow_type_version": wes.get("workflow_type_version") or "v1.2",
                "tags": {str(k): str(v) for k, v in (wes.get("tags") or {}).items()},
                "workflow_engine_parameters": {str(k): str(v) for k, v in
                                               (wes.get("workflow_engine_parameters") or {}).items()},
                "workflow_engine": ENGINE}

    def _read(self, caller: Caller, collection: str, path: str) -> bytes | None:
        """A file of a collection the caller may read; None if it is not there (yet). One over MAX_READ
        is not read (ValueError): whoever runs the container writes it, and the API server is shared."""
        try:
            record = self.backend.get(caller, "collections", collection)
            found = entry(tree_of(record["manifest_text"]), path)
        except ArchipelagoError:
            return None
        if found.is_file and found.size > MAX_READ:
            raise ValueError(f"{path} is {found.size} bytes, more than the {MAX_READ} this service reads")
        try:
            return read_all(self.keep(), caller.token, found.segments or []) if found.is_file else None
        except ArchipelagoError:
            return None

    def _params(self, caller: Caller, request: Record) -> Record:
        bundle = ((request.get("mounts") or {}).get(MOUNT) or {}).get("portable_data_hash")
        try:
            raw = self._read(caller, bundle, "job.json") if bundle else None
            params = json.loads(raw) if raw else {}
        except ValueError:
            params = {}
        return params if isinstance(params, dict) else {}

    def _report(self, caller: Caller, request: Record) -> Record:
        if request["state"] != "Final" or not request.get("output_uuid"):
            return {}
        try:
            raw = self._read(caller, request["output_uuid"], REPORT)
        except ValueError as exc:
            return {"failures": [str(exc)]}
        try:
            report = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return report if isinstance(report, dict) else {}

    @staticmethod
    def _log(request: Record, container: Record | None, base: str) -> Record:
        log: Record = {"name": request.get("name") or request["uuid"], "cmd": [str(c) for c in request["command"]]}
        log.update(_times(container))
        where = request.get("log_uuid") or (container or {}).get("log")
        if where:
            log["stdout"] = f"{base}/arvados/v1/collections/{where}/files/stdout.txt"
            log["stderr"] = f"{base}/arvados/v1/collections/{where}/files/stderr.txt"
        if container is not None and container.get("exit_code") is not None:
            log["exit_code"] = container["exit_code"]
        if error := ((container or {}).get("runtime_status") or {}).get("error"):
            log["system_logs"] = [str(error)]
        return log

    # ---------------------------------------------------------------- tasks
    def _task_requests(self, caller: Caller, request: Record) -> list[Record]:
        found: list[Record] = []
        if request.get("container_uuid"):
            params = ListParams(filters=[["requesting_container_uuid", "=", request["container_uuid"]]],
                                order=["created_at asc", "uuid asc"], limit=MAX_PAGE, count="none")
            found = list(self.backend.list(caller, "container_requests", params)["items"])
        known = {r["uuid"] for r in found}
        for step in self._report(caller, request).get("steps", []):  # steps on other clusters
            uuid = step.get("request") if isinstance(step, dict) else None
            if isinstance(uuid, str) and uuid not in known and UUID_RE.fullmatch(uuid):
                try:
                    found.append(self.backend.get(caller, "container_requests", uuid))
                    known.add(uuid)
                except ArchipelagoError:
                    continue
        return found

    def _task(self, caller: Caller, step: Record, base: str) -> Record:
        container = None
        if step.get("container_uuid"):
            try:
                container = self.backend.get(caller, "containers", step["container_uuid"])
            except ArchipelagoError:
                container = None
        log = self._log(step, container, base)
        log["system_logs"] = [f"cluster {step['uuid'][:5]}", f"state {run_state(step, container)}",
                              *log.get("system_logs", [])]
        return {"id": step["uuid"], **log}

    def tasks(self, caller: Caller, run_id: str, base: str, page_size: str | None, page_token: str | None) -> Record:
        request, _ = self._run(caller, run_id)
        offset, size = page(page_size, page_token)
        steps = self._task_requests(caller, request)
        chosen = steps[offset:offset + size]
        return {"task_logs": [self._task(caller, s, base) for s in chosen],
                "next_page_token": str(offset + size) if len(steps) > offset + size else ""}

    def task(self, caller: Caller, run_id: str, task_id: str, base: str) -> Record:
        request, _ = self._run(caller, run_id)
        for step in self._task_requests(caller, request):
            if step["uuid"] == task_id:
                return self._task(caller, step, base)
        raise NotFound(f"run {run_id} has no task {task_id!r}")


def _times(container: Record | None) -> dict[str, Any]:
    out = {}
    if container is not None:
        if container.get("started_at"):
            out["start_time"] = container["started_at"]
        if container.get("finished_at"):
            out["end_time"] = container["finished_at"]
    return out


def wes_error(status: int, message: str) -> dict[str, Any]:
    return {"msg": message, "status_code": status}
