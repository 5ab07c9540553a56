"""A run's report — the plan, each step, what crossed each boundary beside what the plan allowed —
as `archi run --json` prints it, and kept with the run on its home cluster so that the web UI's run
page shows it for a run started from a terminal as it does for a submitted one (whose runner saves
it as its output, cwl/submit.py). A run from a terminal saves it in a collection of its user's,
tagged with the run's id (cwl/tags.py): the plan when the run starts, the whole report when it ends.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from ..errors import ArchipelagoError
from ..sdk.client import ApiClient
from ..sdk.collection import Collection
from .tags import REPORT, REPORT_TYPE, RUN, WORKFLOW

log = logging.getLogger("archipelago.cwl")


def run_report(runner: Any, outputs: dict[str, Any], status: str, collection: str | None) -> dict[str, Any]:
    """What `--json` prints (and a submitted runner saves as report.json, which WES reads)."""
    return {"status": status, "outputs": outputs, "output_collection": collection, "failures": runner.failures,
            "steps_per_cluster": steps_per_cluster(runner), "bytes_moved": runner.moved(),
            "steps": [{"name": s.name, "key": s.key, "cluster": s.cluster, "request": s.request_uuid,
                       "state": s.state, "status": s.status, "exit_code": s.exit_code, "log": s.log_uuid,
                       "read_from": s.read_from, "seconds": round(s.seconds, 3)} for s in runner.steps.values()],
            "plan": runner.plan_.as_dict(runner.facts) if runner.plan_ else None,
            "crossings": [c.as_dict() for c in runner.crossings.values()],
            "more_than_planned": runner.exceeded}


def steps_per_cluster(runner: Any) -> dict[str, int]:
    per_cluster: dict[str, int] = {}
    for step in runner.steps.values():
        per_cluster[step.cluster] = per_cluster.get(step.cluster, 0) + 1
    return per_cluster


class KeptReport:
    """The report of a run from a terminal, in a collection at home: saved as the run starts (its
    plan; status "running"), then again as it ends. A report that cannot be saved is said in the
    runner's log and never stops the run: it is a record of the run, not a part of it."""

    def __init__(self, home: ApiClient, run_id: str, workflow: str):
        self.home, self.run_id, self.workflow = home, run_id, workflow
        self.uuid: str | None = None
        self._first: dict[str, Any] | None = None
        self._starting: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, report: dict[str, Any]) -> None:
        """The report as the run starts (its plan), saved once its first step is submitted (`go`):
        the steps go first."""
        self._first = report

    def go(self) -> None:
        with self._lock:
            first, self._first = self._first, None
            if first is not None:
                self._starting = threading.Thread(target=self._save, args=(first,), name="report", daemon=True)
                self._starting.start()

    def end(self, report: dict[str, Any]) -> None:
        with self._lock:
            self._first = None  # never submitted anything: the end says it all
            starting = self._starting
        if starting is not None:
            starting.join()
        self._save(report)

    def _save(self, report: dict[str, Any]) -> None:
        try:
            collection = Collection(self.home)
            collection.write(REPORT, json.dumps(report, indent=1, default=str).encode())
            if self.uuid is None:
                self.uuid = str(collection.save_new(
                    f"report of {self.workflow} ({self.run_id})",
                    properties={RUN: self.run_id, WORKFLOW: self.workflow, "type": REPORT_TYPE})["uuid"])
            else:
                collection.record = {"uuid": self.uuid}
                collection.save()
        except (ArchipelagoError, OSError) as exc:
            log.warning("the run's report could not be kept at home: %s", exc)
