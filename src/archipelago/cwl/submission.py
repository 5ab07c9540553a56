"""Submitting and following the steps of one run: the `StepService` every ContainerJob talks to.

A step is checked against the plan before anything is sent (`plan.decide`: the record placed with
its real inputs, the same refusals as up front), submitted on its cluster through the home API,
then followed to the end, woken by the clusters' change streams. The first failure — a step that
fails, a placement refused, a cluster that cannot be reached — ends the run: every request still
running is cancelled (priority 0) at once, waiting steps return, and nothing new is submitted.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ArchipelagoError
from ..sdk.client import ApiClient
from ..sdk.collection import Collection
from .bounds import READ_KEY
from .changes import Changes
from .facts import Facts
from .fsaccess import keep_location
from .joborder import local_path, write_tree
from .plan import Plan, decide
from .service import StepCall, StepOutcome
from .tags import STEP

log = logging.getLogger("archipelago.cwl")
STDERR_LINES = 10  # of a failed step's stderr, shown with its failure
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z ")  # the executor's timestamp on each log line
LOST_AFTER = 5.0  # seconds a step's cluster may fail to answer about its request before it counts as lost
POLL_SECONDS = 1.0  # a step looks at its request at least this often, news or not


@dataclass
class StepReport:
    name: str
    cluster: str
    request_uuid: str
    state: str = "Committed"
    status: str = ""
    exit_code: int | None = None
    log_uuid: str | None = None
    output_pdh: str | None = None
    read_from: dict[str, int] = field(default_factory=dict)  # bytes its container read, by cluster holding them
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    key: str = ""


class Steps:
    """The run's StepService (cwl/service.py)."""

    def __init__(self, home: ApiClient, facts: Facts, plan: Plan, reuse: bool = True, prestage: bool = False,
                 on_change: Callable[[dict[str, StepReport]], None] | None = None,
                 collections: dict[str, Collection] | None = None, tags: dict[str, str] | None = None):
        self.home, self.facts, self.plan, self.reuse, self.prestage = home, facts, plan, reuse, prestage
        self.tags = tags or {}  # on every request's properties: the run's id and workflow (cwl/tags.py)
        self.home_id = facts.home_id
        self.steps: dict[str, StepReport] = {}
        self.failures: list[str] = []  # what went wrong, each said once
        self.prestaged: dict[tuple[str, str], int] = {}  # (cluster, PDH) -> bytes sent ahead
        self.read_home: list[str] = []  # collections the runner itself read home (failed steps' logs)
        self.collections = collections if collections is not None else {}  # PDH -> output, for cwltool's reads
        self.changes = Changes(self._client_for)
        self.on_change = on_change or (lambda steps: None)
        self.ending: str | None = None  # why the run is ending (the first failure)
        self._lock = threading.Lock()
        self._uploaded: dict[str, str] = {}
        self._live: dict[str, str] = {}  # request UUID -> step name, for requests not yet Final
        self._outputs: dict[str, Collection] = {}  # output collections read as their steps ended

    def _client_for(self, cluster: str) -> ApiClient:
        return self.facts.client(cluster)

    # ---------------------------------------------------------------- the interface
    def run(self, call: StepCall) -> StepOutcome:
        if self.ending:
            return StepOutcome("permanentFail", None, failure=f"not started: {self.ending}")
        try:
            return self._run(call)
        except Exception as exc:  # never into cwltool's executor: its lock would be held forever
            return self._fail(call.key, f"step {call.key}: {exc}", None)

    def upload(self, location: str) -> str:
        with self._lock:
            if location in self._uploaded:
                return self._uploaded[location]
            source = local_path(location, Path("."))
            if not source.exists():
                raise FileNotFoundError(f"{source} does not exist")
            collection = Collection(self.home)
            write_tree(collection, source.name, source)
            pdh = collection.save_new(f"{source.name} for archi run")["portable_data_hash"]
            self._uploaded[location] = keep_location(pdh, source.name)
            return self._uploaded[location]

    def failed(self, key: str, why: str) -> None:
        self._fail(key, why, None)

    # ---------------------------------------------------------------- one step
    def _run(self, call: StepCall) -> StepOutcome:
        reuse = "may reuse" if call.attrs.get("use_existing") else "fresh"
        item = decide(self.plan, self.facts, call.key, call.label, call.placement, call.collections, call.given, reuse)
        if item.problems:
            return self._fail(call.key, f"step {call.key}: {'; '.join(item.problems)}", None)
        cluster = str(item.cluster)
        if self.prestage and cluster != self.home_id:
            self._stage_ahead(cluster, call.collections, call.key)
        attrs = {**call.attrs, **({"owner_uuid": item.project} if item.project else {})}
        try:
            request = self.submit(attrs, cluster, call.name)
        except ArchipelagoError as exc:
            return self._fail(call.key, f"step {call.key}: cluster {cluster} did not take the container request: "
                              f"{exc}", cluster)
        item.request = request["uuid"]
        with self._lock:
            self.steps[call.name] = StepReport(call.name, cluster, request["uuid"], request["state"], key=call.key)
            self._live[request["uuid"]] = call.name
            ending = self.ending
        self._notify()
        if ending:  # the run began to end while this was being submitted
            self._cancel([request["uuid"]])
            return StepOutcome("permanentFail", cluster, request, failure=f"cancelled: {ending}")
        final, container = self._wait(request["uuid"], call.name, call.key, cluster)
        if final is None:
            return StepOutcome("permanentFail", cluster, request, failure=f"cancelled: {self.ending}")
        return self._finished(call, cluster, final, container)

    def submit(self, attrs: dict[str, Any], cluster: str, name: str) -> dict[str, Any]:
        """The container request made on `cluster` (through home), tagged with the run and step."""
        properties = {**(attrs.get("properties") or {}), **self.tags, STEP: name}
        self.changes.follow(cluster)
        params = {"cluster_id": cluster} if cluster != self.home_id else None
        return self.home.request("POST", "container_requests", params,
                                 {"container_request": {**attrs, "properties": properties}})

    def _wait(self, uuid: str, name: str, key: str, cluster: str) -> tuple[dict[str, Any] | None, Any]:
        """The request once Final, and its container (None, None if the run ends first). It looks
        when its request or container changes (the clusters' streams say so), and every second
        anyway."""
        failing_since: float | None = None
        seen = self.changes.seen()
        watched = {uuid}
        while True:
            if self.ending:
                return None, None
            try:
                there = self._at(cluster)
                request = there.container_requests.get(uuid)
                container = self._container(request, there)
                failing_since = None
            except ArchipelagoError as exc:  # a busy cluster's passing error, or a lost one
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since >= LOST_AFTER:
                    self._fail(key, f"step {key}: cluster {cluster} cannot be reached (unreachable): {exc}", cluster)
                    return None, None
                time.sleep(0.25)
                continue
            if request.get("container_uuid"):
                watched.add(str(request["container_uuid"]))
            step = self.steps[name]
            state = container["state"] if container else request["state"]
            if state != step.state:
                step.state = state
                self._notify()
            if request["state"] == "Final":
                with self._lock:
                    self._live.pop(uuid, None)
                return request, container
            seen = self.changes.wait(seen, POLL_SECONDS, watched)

    def _at(self, cluster: str) -> ApiClient:
        """Where to look at a step's request and container: on its own cluster (one hop, not two)."""
        return self.home if cluster == self.home_id else self.facts.client(cluster)

    def _container(self, request: dict[str, Any], there: ApiClient) -> Any:
        """The request's container; once the request is Final, its output collection is read at the
        same time (by UUID: one hop to its cluster, no search), for the next steps and cwltool."""
        if not request.get("container_uuid"):
            return None
        output_uuid = request.get("output_uuid") if request["state"] == "Final" else None
        if not output_uuid:
            return there.containers.get(request["container_uuid"])
        with ThreadPoolExecutor(1) as pool:  # through home: its blocks are read through home's keepstore
            reading = pool.submit(Collection, self.home, output_uuid)
            container = there.containers.get(request["container_uuid"])
            with contextlib.suppress(ArchipelagoError):  # else read again, and said, with the outputs
                self._outputs[output_uuid] = reading.result()
        return container

    def _finished(self, call: StepCall, cluster: str, request: dict[str, Any], container: Any) -> StepOutcome:
        step, item = self.steps[call.name], self.plan.items[call.key]
        step.log_uuid = request.get("log_uuid")
        step.exit_code = container.get("exit_code") if container else None
        step.state = container["state"] if container else request["state"]
        step.seconds = time.monotonic() - step.started
        item.ran_on, item.request = cluster, request["uuid"]
        if container is not None:
            item.reused = str(container.get("created_at") or "") < str(request.get("created_at") or "")
            if container["state"] == "Complete":
                read = (container.get("runtime_status") or {}).get(READ_KEY)
                if isinstance(read, dict):
                    item.read = step.read_from = {str(k): int(v) for k, v in read.items()}
        status = "permanentFail"
        if container and container["state"] == "Complete" and container.get("output"):
            status = call.status_of(int(step.exit_code or 0))
        step.status = item.status = status
        if status != "success":
            why = (container or {}).get("runtime_status", {}).get("error") or f"exit code {step.exit_code}"
            self._notify()
            return self._fail(call.key, self._failure_text(call.key, cluster, why, step.log_uuid), cluster,
                              request, container)
        output_uuid = request.get("output_uuid")
        step.output_pdh = item.output = container.get("output")
        if output_uuid:
            output = self._outputs.pop(output_uuid, None) or Collection(self.home, output_uuid)
            self.facts.learn(cluster, output.record)
            self.collections.setdefault(str(step.output_pdh), output)
        self._notify()
        return StepOutcome(status, cluster, request, container, output_uuid)

    def _failure_text(self, key: str, cluster: str, why: str, log_uuid: str | None) -> str:
        """The step, its cluster, why (exit code or the system's reason), the end of its stderr, its log."""
        text = f"step {key} failed on cluster {cluster} ({why}); its log: collection {log_uuid}"
        if not log_uuid:
            return text
        try:
            logs = Collection(self.home, log_uuid)
            self.read_home.append(str(logs.record["portable_data_hash"]))
            self.facts.learn(cluster, logs.record)
            tail = logs.read("stderr.txt").decode(errors="replace").rstrip("\n").splitlines()[-STDERR_LINES:]
        except (ArchipelagoError, FileNotFoundError):
            return text
        return text + "".join(f"\n    {STAMP.sub('', line)}" for line in tail) if tail else text

    # ---------------------------------------------------------------- ending the run
    def _fail(self, key: str, message: str, cluster: str | None, request: Any = None,
              container: Any = None) -> StepOutcome:
        """The first failure ends the run: its message kept once, everything still running cancelled."""
        with self._lock:
            first = self.ending is None
            if first:
                self.ending = f"step {key} failed"
            self.failures.append(message)
            live = list(self._live)
            self._live.clear()
        log.info("%s", message)
        if first:
            self.changes.stop()
            self._cancel(live)
        self._notify()
        return StepOutcome("permanentFail", cluster, request, container, failure=message)

    def _cancel(self, uuids: list[str]) -> None:
        """Priority 0 for each request (the dispatchers stop their containers), all at once."""
        def cancel(uuid: str) -> None:
            try:
                self.home.container_requests.update(uuid, {"priority": 0})
            except ArchipelagoError as exc:
                log.info("could not cancel %s: %s", uuid, exc)
        if uuids:
            with ThreadPoolExecutor(min(8, len(uuids))) as pool:
                list(pool.map(cancel, uuids))
        for step in self.steps.values():
            if step.request_uuid in uuids:
                step.state, step.status = "Cancelled", "cancelled"

    def stop(self) -> None:
        self.changes.stop()

    def _notify(self) -> None:
        self.on_change(self.steps)

    # ---------------------------------------------------------------- --prestage
    def _stage_ahead(self, cluster: str, collections: set[str], key: str) -> None:
        """A step's collections copied to its cluster before it runs (what is there already is not
        sent; what may not leave its cluster stays and is read where it is)."""
        from ..sdk.copy import FederationCopy

        for pdh in sorted(collections):
            with self._lock:
                if (cluster, pdh) in self.prestaged:
                    continue
                try:
                    self.prestaged[(cluster, pdh)] = FederationCopy(self.home, cluster).copy(pdh).bytes_sent
                except ArchipelagoError as exc:
                    log.info("step %s: %s not staged on %s (%s); it will be read on demand", key, pdh, cluster, exc)
                    self.prestaged[(cluster, pdh)] = 0
