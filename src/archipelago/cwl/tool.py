"""cwltool's tool factory for archi: CommandLineTools run as container requests; everything else
(workflows, expressions, scatter, conditionals, subworkflows) stays cwltool's.

Each job is given, once, where it goes (`targets.place`, the same function the plan uses) and its
name in the plan (the step path and scatter record, as cwl/walk.py names them).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from cwltool import process
from cwltool.command_line_tool import CommandLineTool
from cwltool.errors import WorkflowException
from cwltool.process import shortname
from cwltool.workflow import Workflow, WorkflowStep, default_make_tool

from .job import ContainerJob
from .pathmapper import KeepPathMapper
from .service import StepService
from .targets import CLUSTER_TARGET, ordered, own_targets, place
from .walk import key_of

EXTENSIONS = "http://arvados.org/cwl"
__all__ = ["CLUSTER_TARGET", "tool_factory"]


def register_extensions() -> None:
    """arv:ClusterTarget known to the schema (so `requirements:` validate) and to cwltool."""
    if CLUSTER_TARGET not in process.supportedProcessRequirements:
        process.supportedProcessRequirements.append(CLUSTER_TARGET)
    text = (files("archipelago.cwl") / "extensions.yml").read_text()
    for version in ("v1.0", "v1.1", "v1.2"):
        process.use_custom_schema(version, EXTENSIONS, text)


register_extensions()


def record_index(callback: Any) -> tuple[int, ...] | None:
    """The scatter record a step job is for, read off the callback cwltool's scatter gives it
    (nested cross products nest them); None for a step that is not scattered."""
    index: list[int] = []
    while isinstance(callback, functools.partial) and callback.args and isinstance(callback.args[0], int):
        index.insert(0, callback.args[0])
        callback = getattr(getattr(callback.func, "__self__", None), "output_callback", None)
    return tuple(index) or None


@dataclass
class Binding:
    """What the jobs of a loaded workflow are bound to: set once the run has its service (a
    workflow is loaded, and planned, before anything exists to run it)."""

    home: str
    service: StepService | None = None
    reuse: bool = True


def tool_factory(binding: Binding) -> Any:
    """cwltool's make_tool, its jobs bound to `binding.service`."""

    class ArchiCommandLineTool(CommandLineTool):
        def make_job_runner(self, runtimeContext: Any) -> Any:
            return ContainerJob

        def job(self, job_order: Any, output_callbacks: Any, runtimeContext: Any) -> Any:
            path = getattr(runtimeContext, "archi_path", [])
            key = key_of(path) if path else "main"
            try:
                for job in super().job(job_order, output_callbacks, runtimeContext):
                    if isinstance(job, ContainerJob):
                        name = str(self.tool.get("id", "")).rsplit("/", 1)[-1].split("#")[0]
                        inputs = dict(job.builder.job)
                        own = [(t, inputs) for t in own_targets(self.tool, "tool", name)]
                        chain = ordered(getattr(runtimeContext, "archi_chain", []), own)
                        job.placement = place(chain, self.requirements, binding.home)
                        job.key, job.label = key, "/".join(n for n, _ in path) or "main"
                        job.reuse = binding.reuse
                        if binding.service is not None:
                            job.service = binding.service
                    yield job
            except WorkflowException as exc:
                if not path or binding.service is None:
                    raise  # a tool run alone: cwltool's own error, nothing else is running
                binding.service.failed(key, f"step {key}: {exc}")  # raising here would leave running steps hanging
                output_callbacks({}, "permanentFail")

        def make_path_mapper(self, reffiles: Any, stagedir: str, runtimeContext: Any, separateDirs: bool) -> Any:
            def upload(location: str) -> str:
                if binding.service is None:
                    raise WorkflowException(f"{location}: nothing to upload it with")
                return binding.service.upload(location)

            mapper = type("BoundKeepPathMapper", (KeepPathMapper,), {"upload": staticmethod(upload)})
            return mapper(reffiles, runtimeContext.basedir, stagedir, separateDirs)

    class ArchiWorkflowStep(WorkflowStep):
        def job(self, job_order: Any, output_callbacks: Any, runtimeContext: Any) -> Any:
            """The step's own ClusterTarget goes down to its jobs with the step's inputs (before
            the tool keeps only its own), as the official runner evaluates it; and its name."""
            name = shortname(self.id)
            runtimeContext = runtimeContext.copy()
            runtimeContext.archi_path = [*getattr(runtimeContext, "archi_path", []),
                                         (name, record_index(output_callbacks))]
            inputs = {shortname(k): v for k, v in job_order.items()}
            runtimeContext.archi_chain = [*((t, inputs) for t in own_targets(self.tool, "step", name)),
                                          *getattr(runtimeContext, "archi_chain", [])]
            yield from super().job(job_order, output_callbacks, runtimeContext)

    class ArchiWorkflow(Workflow):
        def job(self, job_order: Any, output_callbacks: Any, runtimeContext: Any) -> Any:
            """cwltool raises a step's error (a valueFrom that fails, a type mismatch) out of the
            loop that holds its executor's lock, and the steps still running then wait for that
            lock forever: the error becomes this workflow's failure, and the run's first."""
            name = str(self.tool.get("id", "")).rsplit("/", 1)[-1].split("#")[0] or "main"
            inputs = {shortname(k): v for k, v in job_order.items()}
            runtimeContext = runtimeContext.copy()
            runtimeContext.archi_chain = [*getattr(runtimeContext, "archi_chain", []),
                                          *((t, inputs) for t in own_targets(self.tool, "workflow", name))]
            try:
                yield from super().job(job_order, output_callbacks, runtimeContext)
            except WorkflowException as exc:
                if binding.service is None:
                    raise
                path = getattr(runtimeContext, "archi_path", [])
                binding.service.failed(key_of(path) if path else "main", str(exc))
                output_callbacks({}, "permanentFail")

        def make_workflow_step(self, toolpath_object: Any, pos: int, loadingContext: Any,
                               parentworkflowProv: Any = None) -> Any:
            return ArchiWorkflowStep(toolpath_object, pos, loadingContext, parentworkflowProv)

    def make_tool(toolpath_object: Any, loadingContext: Any) -> Any:
        if toolpath_object.get("class") == "CommandLineTool":
            return ArchiCommandLineTool(toolpath_object, loadingContext)
        if toolpath_object.get("class") == "Workflow":
            return ArchiWorkflow(toolpath_object, loadingContext)
        return default_make_tool(toolpath_object, loadingContext)

    return make_tool
