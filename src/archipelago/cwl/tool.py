"""cwltool's tool factory for archi: CommandLineTools run as container requests; everything else
(workflows, expressions, scatter, conditionals, subworkflows) stays cwltool's."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from cwl_utils.expression import do_eval
from cwltool import process
from cwltool.command_line_tool import CommandLineTool
from cwltool.process import shortname
from cwltool.workflow import Workflow, WorkflowStep, default_make_tool

from .job import ContainerJob
from .pathmapper import KeepPathMapper

CLUSTER_TARGET = "http://arvados.org/cwl#ClusterTarget"
EXTENSIONS = "http://arvados.org/cwl"


def register_extensions() -> None:
    """arv:ClusterTarget known to the schema (so `requirements:` validate) and to cwltool."""
    if CLUSTER_TARGET not in process.supportedProcessRequirements:
        process.supportedProcessRequirements.append(CLUSTER_TARGET)
    text = (files("archipelago.cwl") / "extensions.yml").read_text()
    for version in ("v1.0", "v1.1", "v1.2"):
        process.use_custom_schema(version, EXTENSIONS, text)


register_extensions()


def step_target(step: Any) -> dict[str, Any] | None:
    """The ClusterTarget written on a workflow step itself (its hints or requirements), if any."""
    own = [*step.tool.get("hints", []), *step.tool.get("requirements", [])]
    return next((r for r in own if r.get("class") == CLUSTER_TARGET and r.get("cluster_id")), None)


def tool_factory(runner: Any) -> Any:
    bound_job = type("BoundContainerJob", (ContainerJob,), {"runner": runner})

    class ArchiCommandLineTool(CommandLineTool):
        def make_job_runner(self, runtimeContext: Any) -> Any:
            return bound_job

        def job(self, job_order: Any, output_callbacks: Any, runtimeContext: Any) -> Any:
            """Jobs carry their step's evaluated ClusterTarget: the executor runs them with its own
            context, not the step's."""
            for job in super().job(job_order, output_callbacks, runtimeContext):
                if job is not None:
                    setattr(job, "archi_cluster_target", getattr(runtimeContext, "archi_cluster_target", None))  # noqa: B010
                yield job

        def make_path_mapper(self, reffiles: Any, stagedir: str, runtimeContext: Any, separateDirs: bool) -> Any:
            mapper = type("BoundKeepPathMapper", (KeepPathMapper,), {"upload": staticmethod(runner.upload_local)})
            return mapper(reffiles, runtimeContext.basedir, stagedir, separateDirs)

    class ArchiWorkflowStep(WorkflowStep):
        def job(self, job_order: Any, output_callbacks: Any, runtimeContext: Any) -> Any:
            """A ClusterTarget on the step is evaluated with the step's inputs (before the tool
            keeps only its own), as the official runner does, and handed down to its jobs."""
            target = step_target(self)
            if target is not None:
                inputs = {shortname(k): v for k, v in job_order.items()}
                runtimeContext = runtimeContext.copy()
                runtimeContext.archi_cluster_target = {
                    key: do_eval(target[key], inputs, self.requirements, None, None, {})
                    if isinstance(target.get(key), str) else target.get(key)
                    for key in ("cluster_id", "project_uuid")}
            yield from super().job(job_order, output_callbacks, runtimeContext)

    class ArchiWorkflow(Workflow):
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
