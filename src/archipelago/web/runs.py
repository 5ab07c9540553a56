"""A workflow run as the run pages show it, gathered with the reader's Caller: its steps' container
requests on every cluster (found by the run id the runner puts in their properties, cwl/tags.py),
their containers (asked of the cluster each ran on), what each step read from which cluster (its
container's own count, from its log), which step fed which, and cancelling or running it again."""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..backend.interface import Caller, ListParams, Record
from ..cwl.tags import REPORT, REPORT_TYPE, RUN, RUN_ID_ENV, STEP, WORKFLOW, new_run_id
from ..errors import ArchipelagoError, BadRequest, NotFound, Unprocessable
from ..executor import READ_BY_CLUSTER
from ..ids import PDH_RE
from ..times import aware, now, parse_time
from .federation import Federation
from .listing import file_segments, keep_client, read_head, read_tail, tree_of

REQUEST_FIELDS = ["uuid", "name", "state", "created_at", "modified_at", "container_uuid", "log_uuid", "output_uuid",
                  "mounts", "properties", "priority", "requesting_container_uuid", "runtime_user_uuid",
                  "modified_by_user_uuid"]
CONTAINER_FIELDS = ["uuid", "state", "started_at", "finished_at", "exit_code", "log", "output", "runtime_status"]
FINAL = {"Complete", "Cancelled"}
RUN_ID = re.compile(r"[a-z0-9]{5}-run-[0-9a-f]{16}")
# what an executor writes in crunch-run.txt for each mount it read (executor/run.py)
READ_LINE = re.compile(r"read (?P<bytes>\d+) bytes of mounted data held (?P<where>here|by cluster (?P<cluster>\w+))")
LOG_FILES = ("crunch-run.txt", "stderr.txt", "stdout.txt")
LOG_TAIL_BYTES = 64 << 10
MAX_STEPS = 1000
REPORT_BYTES = 8 << 20
QUIET_SECONDS = 120  # a run from a terminal with every step done and none new for this long has ended


def run_key(text: str) -> str:
    if not RUN_ID.fullmatch(text):
        raise BadRequest(f"{text!r} is not a run id (<cluster>-run-<16 hex digits>)")
    return text


@dataclass
class Step:
    uuid: str
    name: str
    cluster: str
    request_state: str
    created_at: str | None
    priority: int
    is_runner: bool = False
    container_uuid: str | None = None
    container_state: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    log: str | None = None
    output: str | None = None
    output_uuid: str | None = None
    error: str | None = None
    inputs: list[dict[str, str]] = field(default_factory=list)
    read_from: dict[str, int] | None = None  # bytes its container read, by the cluster holding them

    @property
    def state(self) -> str:
        """One word for people: submitted, queued, running, succeeded, failed, cancelled."""
        if self.container_state == "Complete":
            return "succeeded" if self.exit_code == 0 else "failed"
        if self.container_state == "Cancelled" or (self.request_state == "Final" and not self.container_state):
            return "cancelled"
        if self.container_state == "Running":
            return "running"
        if self.container_state in ("Queued", "Locked"):
            return "queued"
        return "submitted" if self.request_state == "Committed" else self.request_state.lower()

    @property
    def final(self) -> bool:
        return self.request_state == "Final" or self.container_state in FINAL

    def as_dict(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "name": self.name, "cluster": self.cluster, "state": self.state,
                "container": self.container_uuid, "started_at": self.started_at, "finished_at": self.finished_at,
                "exit_code": self.exit_code, "log": self.log, "output": self.output, "error": self.error,
                "read_from": self.read_from, "runner": self.is_runner}


@dataclass
class Run:
    id: str
    workflow: str
    steps: list[Step]
    runner: Step | None
    unreachable: dict[str, str]  # clusters that could not be asked, and why
    user: str | None = None  # whose run it is (who made its first request)

    @property
    def done(self) -> bool:
        """Every step known so far has finished (a runner may still submit more)."""
        work = [*self.steps, *([self.runner] if self.runner else [])]
        return bool(work) and all(s.final for s in work)

    @property
    def finished(self) -> bool:
        """The run has ended: its runner has (`archi run --submit`); a run from a terminal leaves no
        mark of its end, so: every step done and none new for QUIET_SECONDS."""
        if not self.done:
            return False
        if self.runner is not None:
            return True
        ends = [parse_time(s.finished_at) or parse_time(s.created_at) for s in self.steps]
        last = max((e for e in ends if e is not None), default=None)
        return last is None or (now() - aware(last)).total_seconds() > QUIET_SECONDS

    @property
    def state(self) -> str:
        states = [s.state for s in self.steps]
        if not self.done:
            return "running" if "running" in states else "in progress"
        if self.runner is not None and self.runner.state != "succeeded":
            return self.runner.state
        return "failed" if "failed" in states else "cancelled" if "cancelled" in states else "succeeded"

    def edges(self) -> list[tuple[str, str]]:
        """(from step, to step): the second mounted what the first produced."""
        made = {s.output: s.uuid for s in self.steps if s.output}
        return [(made[i["pdh"]], s.uuid) for s in self.steps for i in s.inputs if made.get(i["pdh"], s.uuid) != s.uuid]

    def moved(self) -> dict[str, int]:
        """Bytes that crossed between clusters by the steps' own counts: "from→to" -> bytes."""
        pairs: dict[str, int] = {}
        for step in self.steps:
            for source, size in (step.read_from or {}).items():
                if source != step.cluster:
                    edge = f"{source}→{step.cluster}"
                    pairs[edge] = pairs.get(edge, 0) + size
        return pairs

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.id, "state": self.state, "done": self.done, "finished": self.finished,
                "workflow": self.workflow,
                "steps": [s.as_dict() for s in self.steps], "runner": self.runner.as_dict() if self.runner else None,
                "moved": self.moved(), "unreachable": self.unreachable}


def _step(request: Record) -> Step:
    properties = request.get("properties") or {}
    inputs = []
    for path, mount in sorted((request.get("mounts") or {}).items()):
        if isinstance(mount, dict) and mount.get("kind") == "collection" and PDH_RE.fullmatch(
                str(mount.get("portable_data_hash", ""))):
            inputs.append({"path": path, "pdh": mount["portable_data_hash"], "sub": str(mount.get("path") or "")})
    return Step(request["uuid"], str(properties.get(STEP) or request.get("name") or request["uuid"]),
                request["uuid"][:5], request["state"], request.get("created_at"), int(request.get("priority") or 0),
                is_runner=properties.get("type") == "archi-run", container_uuid=request.get("container_uuid"),
                output_uuid=request.get("output_uuid"), log=request.get("log_uuid"), inputs=inputs)


def _whose(request: Record) -> str | None:
    """Who a request is: the user it runs as once committed, else who last changed it."""
    return request.get("runtime_user_uuid") or request.get("modified_by_user_uuid")


def its_users(requests: list[Record]) -> list[Record]:
    """The requests of a run that are its user's: whoever made its first. Anyone who has seen a run's id
    can tag requests of hers with it and let its user read them; they are no part of the run (never its
    runner, whose command "Run again" would submit as the reader)."""
    known = [r for r in requests if _whose(r)]
    if not known:
        return []
    first = min(known, key=lambda r: (str(r.get("created_at") or ""), r["uuid"]))
    return [r for r in known if _whose(r) == _whose(first)]


class Runs:
    def __init__(self, federation: Federation):
        self.fed = federation
        self._read: OrderedDict[tuple[str, str], dict[str, int]] = OrderedDict()  # (user, log PDH) -> counts
        self._lock = threading.Lock()

    def gather(self, caller: Caller, run_id: str, counts: bool = True) -> Run:
        params = ListParams(filters=[[f"properties.{RUN}", "=", run_id]], order=["created_at asc"], limit=MAX_STEPS,
                            count="none", select=REQUEST_FIELDS)
        found = self.fed.each(lambda c: self.fed.backend_for(c).list(caller, "container_requests", params))
        requests: list[Record] = []
        unreachable: dict[str, str] = {}
        for cluster, result in found.items():
            if isinstance(result, ArchipelagoError):
                unreachable[cluster] = str(result)
            else:
                requests += result["items"]
        requests = its_users(requests)
        if not requests:
            detail = "; ".join(f"{c}: {why}" for c, why in unreachable.items())
            raise NotFound(f"no run {run_id} that you can see on any cluster of this federation"
                           + (f" (not asked: {detail})" if detail else ""))
        steps = [_step(r) for r in requests]
        self._containers(caller, steps)
        if counts:  # containers that ended before the executor recorded it: their logs say
            self._counts(caller, [s for s in steps if s.final and s.log and s.read_from is None])
        workflow = next((str((r.get("properties") or {}).get(WORKFLOW) or "") for r in requests), "")
        runner = next((s for s in steps if s.is_runner), None)
        ordered = sorted((s for s in steps if not s.is_runner), key=lambda s: (s.created_at or "", s.name))
        return Run(run_id, workflow, ordered, runner, unreachable, _whose(requests[0]))

    def _containers(self, caller: Caller, steps: list[Step]) -> None:
        by_cluster: dict[str, list[str]] = {}
        for step in steps:
            if step.request_state != "Uncommitted" and (uuid := step.container_uuid):
                by_cluster.setdefault(uuid[:5], []).append(uuid)

        def ask(cluster: str) -> Record:
            return self.fed.backend_for(cluster).list(caller, "containers", ListParams(
                filters=[["uuid", "in", by_cluster[cluster]]], limit=MAX_STEPS, count="none", select=CONTAINER_FIELDS))

        containers: dict[str, Record] = {}
        for result in self.fed.each(ask, sorted(by_cluster)).values():
            if not isinstance(result, ArchipelagoError):
                containers.update((c["uuid"], c) for c in result["items"])
        for step in steps:
            container = containers.get(step.container_uuid or "")
            if container is None:
                continue
            step.container_state = container["state"]
            step.started_at, step.finished_at = container.get("started_at"), container.get("finished_at")
            step.exit_code, step.output = container.get("exit_code"), container.get("output")
            step.log = container.get("log") or step.log  # the live log while it runs
            status = container.get("runtime_status") or {}
            step.error = status.get("error")
            read = status.get(READ_BY_CLUSTER)  # the executor's own count as the container ended
            if step.final and isinstance(read, dict):
                step.read_from = {str(c): int(n) for c, n in read.items() if isinstance(n, int)}

    def _counts(self, caller: Caller, steps: list[Step]) -> None:
        """Each finished step's own count of the bytes it read, by cluster (its crunch-run.txt)."""
        def count(step: Step) -> dict[str, int] | None:
            key = (caller.user_uuid, str(step.log))
            with self._lock:
                if key in self._read:
                    return self._read[key]
            try:
                text = self.log_tail(caller, str(step.log), "crunch-run.txt", 1 << 20).decode("utf-8", "replace")
            except ArchipelagoError:
                return None
            read: dict[str, int] = {}
            for match in READ_LINE.finditer(text):
                source = step.cluster if match["where"] == "here" else match["cluster"]
                read[source] = read.get(source, 0) + int(match["bytes"])
            with self._lock:
                self._read[key] = read
                while len(self._read) > 10_000:
                    self._read.popitem(last=False)
            return read

        for step, read in zip(steps, self.fed.map(count, steps), strict=True):
            step.read_from = read

    def log_tail(self, caller: Caller, log: str, name: str, limit: int = LOG_TAIL_BYTES) -> bytes:
        """The end of one file of a step's log collection, fetched through the federation (a remote
        step's log: from its cluster, its blocks through this cluster's keepstore)."""
        if name not in LOG_FILES:
            raise NotFound(f"no log file {name!r} (the logs are {', '.join(LOG_FILES)})")
        record = self.fed.backend.get(caller, "collections", log, ["manifest_text"])
        segments = file_segments(tree_of(record.get("manifest_text") or ""), name)
        services = self.fed.backend.keep_services(caller)["items"]
        data, _ = read_tail(keep_client(services, caller.token), segments, limit)
        return data

    def report(self, caller: Caller, run: Run) -> dict[str, Any] | None:
        """The run's own report (`report.json`, as `archi run --json` prints it): the plan, each step's
        placement and what crossed, planned beside measured. A submitted run's is its runner's output,
        once its runner has ended; a run from a terminal keeps its own at home (cwl/report.py: the plan
        as it starts, all of it as it ends), in a collection of the run's user's. None before."""
        runner = run.runner
        if runner is None:
            return self._kept_report(caller, run)
        if not runner.final or not runner.output_uuid:
            return None
        return self._report_in(caller, runner.output_uuid)

    def _kept_report(self, caller: Caller, run: Run) -> dict[str, Any] | None:
        """A terminal run's report, from the cluster it started from; only one its user saved (anyone
        may tag a collection with a run's id they have seen: that is no report of the run)."""
        if run.user is None:
            return None
        params = ListParams(filters=[[f"properties.{RUN}", "=", run.id], ["properties.type", "=", REPORT_TYPE],
                                     ["owner_uuid", "=", run.user], ["modified_by_user_uuid", "=", run.user]],
                            order=["modified_at desc"], limit=1, count="none", select=["uuid"])
        try:
            found = self.fed.backend_for(run.id[:5]).list(caller, "collections", params)["items"]
        except ArchipelagoError:
            return None
        return self._report_in(caller, str(found[0]["uuid"])) if found else None

    def _report_in(self, caller: Caller, collection: str) -> dict[str, Any] | None:
        try:
            record = self.fed.backend.get(caller, "collections", collection, ["manifest_text"])
            segments = file_segments(tree_of(record.get("manifest_text") or ""), REPORT)
            services = self.fed.backend.keep_services(caller)["items"]
            data, cut = read_head(keep_client(services, caller.token), segments, REPORT_BYTES)
            report = json.loads(data) if not cut else None
        except (ArchipelagoError, ValueError):
            return None
        return report if isinstance(report, dict) else None

    def step(self, caller: Caller, run_id: str, uuid: str) -> tuple[Run, Step]:
        run = self.gather(caller, run_id)
        for step in [*run.steps, *([run.runner] if run.runner else [])]:
            if step.uuid == uuid:
                return run, step
        raise NotFound(f"run {run_id} has no step {uuid} that you can see")

    def cancel(self, caller: Caller, run_id: str) -> int:
        """Every step not yet finished, and the runner, asked to stop (priority 0) on its own cluster."""
        run = self.gather(caller, run_id, counts=False)
        live = [s for s in [*([run.runner] if run.runner else []), *run.steps] if s.request_state == "Committed"
                and not s.final]
        if not live:
            raise Unprocessable(f"run {run_id} has finished: there is nothing to cancel")
        for step in live:
            self.fed.backend.update(caller, "container_requests", step.uuid, {"priority": 0})
        return len(live)

    def rerun(self, caller: Caller, run_id: str) -> str:
        """A submitted run (`archi run --submit`) again: its runner's request anew, with a new run id;
        finished steps are reused, so only what failed or changed runs again."""
        run = self.gather(caller, run_id, counts=False)
        if run.runner is None:
            raise Unprocessable(f"run {run_id} was run from a terminal (archi run), not submitted: run it again there "
                                "(with --submit, the web UI can run it again)")
        old = self.fed.backend.get(caller, "container_requests", run.runner.uuid)
        fresh = new_run_id(self.fed.home)
        copied = ("name", "command", "container_image", "cwd", "output_path", "mounts", "runtime_constraints",
                  "scheduling_parameters", "owner_uuid", "description", "output_name")
        attrs = {k: old[k] for k in copied if old.get(k) is not None}
        attrs.update(environment={**(old.get("environment") or {}), RUN_ID_ENV: fresh},
                     properties={**(old.get("properties") or {}), RUN: fresh}, state="Committed", priority=500,
                     use_existing=False)
        self.fed.backend.create(caller, "container_requests", attrs, cluster_id=run.runner.cluster)
        return fresh

    def list_runs(self, caller: Caller) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The runs the user can see, newest first: (id, workflow, clusters, steps, finished, started)."""
        params = ListParams(filters=[[f"properties.{RUN}", "exists", True]], order=["created_at desc"],
                            limit=MAX_STEPS, count="none",
                            select=["uuid", "state", "created_at", "properties", "runtime_user_uuid",
                                    "modified_by_user_uuid"])
        found = self.fed.each(lambda c: self.fed.backend_for(c).list(caller, "container_requests", params))
        tagged: dict[str, list[Record]] = {}
        unreachable: dict[str, str] = {}
        for cluster, result in found.items():
            if isinstance(result, ArchipelagoError):
                unreachable[cluster] = str(result)
                continue
            for request in result["items"]:
                run_id = str((request.get("properties") or {}).get(RUN))
                if RUN_ID.fullmatch(run_id):
                    tagged.setdefault(run_id, []).append(request)
        runs: dict[str, dict[str, Any]] = {}
        for run_id, requests in tagged.items():
            for request in its_users(requests):
                properties = request.get("properties") or {}
                run = runs.setdefault(run_id, {"id": run_id, "workflow": "", "clusters": set(), "steps": 0,
                                               "final": 0, "started": request.get("created_at")})
                run["workflow"] = run["workflow"] or properties.get(WORKFLOW, "")
                run["clusters"].add(request["uuid"][:5])
                run["steps"] += 1
                run["final"] += request["state"] == "Final"
                run["started"] = min(run["started"] or "", request.get("created_at") or "")
        ordered = sorted(runs.values(), key=lambda r: r["started"] or "", reverse=True)
        for run in ordered:
            run["clusters"] = sorted(run["clusters"])
        return ordered, unreachable

