"""`archi run WORKFLOW JOB`: a CWL workflow whose CommandLineTools run as container requests, each
on the cluster its `arv:ClusterTarget` names, else at home. The entry points other packages use:

    Runner(client).plan(workflow, job)  -> Plan        nothing written anywhere
    Runner(client).run(workflow, job)   -> (outputs, status)
        raises RunError (exit 2: a document that does not load, a job order that does not fit)
        and Refused (exit 2: what the plan refuses, every problem at once; nothing submitted);
        a step that fails ends the run: status "permanentFail", `failures` says why, once.

The run, in order: load (cwl/loading.py), read the job order (cwl/joborder.py), plan and refuse
(cwl/plan.py, asking the clusters through cwl/facts.py), upload local inputs and plan again with
them, run the steps through cwltool's executor and the StepService (cwl/submission.py), gather
the outputs at home (cwl/outputs.py), and set what moved beside the plan's bounds (cwl/bounds.py).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from cwltool.context import RuntimeContext
from cwltool.executors import MultithreadedJobExecutor
from cwltool.process import Process

from ..rpc import Transport
from ..sdk.client import ApiClient
from ..sdk.collection import Collection
from .bounds import Crossing, Outcome, crossings, exceeded, measure
from .errors import RunError
from .facts import Facts
from .fsaccess import PREFIX, KeepCache, KeepFsAccess, split
from .job import OUTDIR
from .joborder import find_objects, read_job_order, upload_local_inputs
from .loading import DocumentError, document_uri, load
from .outputs import download_outputs, final_output
from .plan import Plan, make_plan
from .render import moved_text, plan_text
from .report import KeptReport, run_report
from .submission import StepReport, Steps
from .tags import REPORT_IN_OUTPUT_ENV, RUN, RUN_ID_ENV, WORKFLOW, new_run_id
from .tool import Binding, tool_factory

log = logging.getLogger("archipelago.cwl")
__all__ = ["DocumentError", "Refused", "RunError", "Runner", "StepReport", "document_uri", "download_outputs"]
PARALLEL_STEPS = 64  # steps in flight at once (each is a container request on some cluster)


class Refused(RunError):
    """The plan refuses the run: every problem, each with its step and record (`runner.plan_`)."""

    def __init__(self, runner: Runner):
        assert runner.plan_ is not None
        lines = [f"{key}: {problem}" if key else problem for key, problem in runner.plan_.refusals()]
        super().__init__(f"the plan refuses this run, nothing was submitted: {len(lines)} problem(s)\n  "
                         + "\n  ".join(lines))
        self.runner, self.plan = runner, runner.plan_


class Runner:
    def __init__(self, home: ApiClient, reuse: bool = True, on_change: Any = None, prestage: bool = False,
                 on_plan: Callable[[Runner], None] | None = None,
                 transport_for: Callable[[str], Transport] | None = None):
        """`on_plan(runner)`: the plan is made (before anything is submitted); `transport_for`: how to
        reach each other cluster (default: HTTPS, as the home cluster's configuration says)."""
        self.home, self.reuse, self.prestage = home, reuse, prestage
        self._transport_for = transport_for
        self.workflow_name = ""
        self.on_change = on_change or (lambda steps: None)
        self.on_plan = on_plan or (lambda runner: None)
        self.plan_: Plan | None = None
        self.service: Steps | None = None
        self.inputs_pdh: str | None = None  # the collection local inputs were uploaded into
        self.crossings: dict[str, Crossing] = {}
        self.exceeded: list[str] = []  # pairs of clusters across which more moved than planned: bugs
        self.keep_cache = KeepCache()  # what the run's file accesses learn of collections, shared
        self.collections: dict[str, Collection] = self.keep_cache.collections  # read by this run, by PDH
        self._binding = Binding("", None, reuse)
        # a run from a terminal keeps its report at home, for the web UI (a submitted one: in its output)
        self.keep_report = not os.environ.get(REPORT_IN_OUTPUT_ENV)
        self.kept: KeptReport | None = None

    # ---------------------------------------------------------------- what callers read
    @cached_property
    def facts(self) -> Facts:
        """The clusters' answers (asked only once the documents have loaded: a bad one needs no cluster)."""
        facts = Facts(self.home, self._transport_for)
        self._binding.home = facts.home_id
        return facts

    @property
    def home_id(self) -> str:
        return self.facts.home_id

    @property
    def clusters(self) -> set[str]:
        return set(self.facts.clusters)

    @cached_property
    def run_id(self) -> str:
        """On every step's request (cwl/tags.py); a submitted runner is given its own."""
        return os.environ.get(RUN_ID_ENV) or new_run_id(self.home_id)

    @property
    def steps(self) -> dict[str, StepReport]:
        return self.service.steps if self.service else {}

    @property
    def failures(self) -> list[str]:
        return self.service.failures if self.service else []

    @property
    def prestaged(self) -> dict[tuple[str, str], int]:
        return self.service.prestaged if self.service else {}

    def moved(self) -> dict[str, int]:
        """Bytes moved between each pair of clusters ("z1111→z2222"): the keepstores' count where
        it could be read, else this run's containers' own."""
        return {edge: n for edge, c in self.crossings.items()
                if (n := c.keepstores if c.keepstores is not None else c.containers or 0)}

    def plan_text(self) -> str:
        """The plan as `archi run` prints it (cwl/render.py)."""
        return plan_text(self.plan_, self.facts, self.crossings) if self.plan_ else ""

    def moved_text(self) -> str:
        """The bytes the plan allowed beside those that moved, once the run is over."""
        return moved_text(self.crossings, self.exceeded)

    # ---------------------------------------------------------------- entry points
    def plan(self, workflow: Path, job: Path | None) -> Plan:
        """The plan of running `workflow` with `job`, asking the clusters, writing nothing."""
        return self.prepare(workflow, job)[3]

    def prepare(self, workflow: Path, job: Path | None,
                tool: Process | None = None) -> tuple[Process, dict[str, Any], Path, Plan]:
        """The workflow loaded, its job order read and the plan made: nothing written anywhere."""
        tool = tool or self.load(workflow)
        self.keep_cache.sizes_later = True  # not one lookup per input file: the plan asks about all at once
        try:
            job_order, basedir = self.read_inputs(tool, job)
        finally:
            self.keep_cache.sizes_later = False
        name = Path(str(workflow).partition("#")[0]).name
        self.workflow_name = self.workflow_name or name
        self.plan_ = make_plan(tool, job_order, self.facts, self.reuse, name)
        self._learn_inputs(job_order)
        self.crossings = crossings(self.plan_, self.facts)
        return tool, job_order, basedir, self.plan_

    def run(self, workflow: Path, job: Path | None) -> tuple[dict[str, Any], str]:
        tool = self.load(workflow)
        counters: list[Any] = []
        before = threading.Thread(target=self._count_into, args=(counters,), daemon=True)
        before.start()  # while the job order is read and the run planned: nothing is submitted before
        tool, job_order, basedir, plan = self.prepare(workflow, job, tool)
        name = plan.workflow
        if plan.refusals():
            raise Refused(self)
        uploaded = upload_local_inputs(self.home, job_order, basedir)
        if uploaded is not None:  # planned again: the uploaded files are a collection at home now
            self.inputs_pdh = uploaded["portable_data_hash"]
            self.facts.learn(self.home_id, uploaded)
            seconds = plan.seconds
            plan = self.plan_ = make_plan(tool, job_order, self.facts, self.reuse, name)
            plan.seconds += seconds
        self.crossings = crossings(plan, self.facts)
        self.on_plan(self)
        service = self.service = self.steps_service(plan)
        self._binding.service = service
        if self.keep_report:
            self.kept = KeptReport(self.home, self.run_id, name)
            self.kept.start(run_report(self, {}, "running", None))
        before.join()
        try:
            outputs, status = self._execute(tool, job_order, basedir)
        except BaseException:
            if self.kept is not None:
                self.kept.end(run_report(self, {}, "permanentFail", None))
            raise
        finally:
            service.stop()
        origins: list[tuple[str, str]] = []
        if outputs and status == "success":
            outputs, origins = final_output(self.home, outputs, f"Output of {name}", self.collections)
        self.crossings = crossings(plan, self.facts, Outcome(origins, service.read_home))
        measure(self.crossings, plan, counters[0] if counters else None, self.facts.keep_counters())
        self.exceeded = exceeded(self.crossings)
        if self.kept is not None:
            shown = {k: v for k, v in outputs.items() if k != "_archi_output_collection"}
            self.kept.end(run_report(self, shown, status, outputs.get("_archi_output_collection")))
        return outputs, status

    # ---------------------------------------------------------------- the parts
    def _count_into(self, found: list[Any]) -> None:
        try:
            found.append(self.facts.keep_counters())
        except Exception:  # the counters are a measure, not a condition: the run goes on without them
            found.append(None)

    def steps_service(self, plan: Plan) -> Steps:
        return Steps(self.home, self.facts, plan, self.reuse, self.prestage, self._changed, self.collections,
                     {RUN: self.run_id, WORKFLOW: self.workflow_name})

    def _changed(self, steps: dict[str, StepReport]) -> None:
        if self.kept is not None and steps:
            self.kept.go()  # the plan is kept at home once the first step is on its way
        self.on_change(steps)

    def load(self, workflow: Path) -> Process:
        return load(workflow, tool_factory(self._binding))

    def read_inputs(self, tool: Process, job: Path | None) -> tuple[dict[str, Any], Path]:
        return read_job_order(tool, job, lambda basedir: KeepFsAccess(basedir, self.home, self.keep_cache))

    def _learn_inputs(self, job_order: dict[str, Any]) -> None:
        """What the plan learned of the inputs, given to cwltool: each keep: file's size, and which
        collections the runner may not read from home (restricted elsewhere: only steps there may)."""
        for entry in find_objects(job_order, ("File",), lambda v: str(v.get("location", "")).startswith(PREFIX)):
            pdh, path = split(str(entry["location"]))
            holders = self.facts.holders(pdh)
            if "size" not in entry:
                sizes = [s for h in holders.values() if (s := h.file_size(path)) is not None]
                if sizes:
                    entry["size"] = sizes[0]
            if holders and self.home_id not in holders and all(h.restricted for h in holders.values()):
                self.keep_cache.refused.setdefault(pdh, PermissionError(f"keep:{pdh} stays on its cluster"))

    def _execute(self, tool: Process, job_order: dict[str, Any], basedir: Path) -> tuple[dict[str, Any], str]:
        runtime = RuntimeContext()
        settings = {
            # paths as the containers see them; no image unless a tool asks for one (the cluster's runtime decides)
            "use_container": True, "default_container": "archipelago/host",
            "docker_outdir": OUTDIR, "docker_tmpdir": "/tmp", "docker_stagedir": "/var/lib/cwl",
            "move_outputs": "leave", "basedir": str(basedir),
            "compute_checksum": False,  # the final outputs get theirs (cwl/outputs.py); steps' need none
            "make_fs_access": lambda basedir: KeepFsAccess(basedir, self.home, self.keep_cache),
        }
        for key, value in settings.items():
            setattr(runtime, key, value)
        # steps run at once where the workflow allows: they use the clusters' cores, not this
        # machine's, so the executor's own resource accounting must not hold them back
        executor = MultithreadedJobExecutor(max_parallel=PARALLEL_STEPS)
        executor.max_ram = 1 << 40
        result, status = executor(tool, job_order, runtime, logger=log)
        return dict(result or {}), status

