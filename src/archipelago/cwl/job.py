"""One CommandLineTool invocation as a container request: command line, environment, stdin and
stdout, input collections mounted at /keep/<PDH>, resources, time limit. It hands the request to
the run's StepService (cwl/service.py: where it goes, submission, waiting are the service's) and
collects its outputs from its output collection, wherever that is."""

from __future__ import annotations

import posixpath
import threading
from typing import Any

from cwltool.errors import WorkflowException
from cwltool.job import JobBase

from ..errors import ArchipelagoError
from .fsaccess import PREFIX, split
from .pathmapper import KEEP_ROOT
from .service import StepCall, StepService
from .targets import Placement

OUTDIR = "/var/spool/cwl"


class ContainerJob(JobBase):
    """Given by the tool (cwl/tool.py) its `service`, `placement` and plan `key` and `label`."""

    service: StepService
    placement: Placement
    key: str = "main"
    label: str = "main"
    reuse: bool = True

    def run(self, runtimeContext: Any, tmpdir_lock: threading.Lock | None = None) -> None:
        """Never raises: cwltool's executor holds its lock while it handles an exception, and a
        step still running would wait for that lock forever."""
        outputs: Any = {}
        status = "permanentFail"
        try:
            call = StepCall(self.name, self.key, self.label, self.placement, self.request_attrs(),
                            set(self.pathmapper.collections()), self._given(), self.status_of)  # type: ignore[attr-defined]
        except Exception as exc:  # a local file that cannot be uploaded, say
            self.service.failed(self.key, f"step {self.key}: {exc}")
        else:
            outcome = self.service.run(call)
            if outcome.status == "success" and outcome.container is not None:
                try:
                    outputs = self.collect_outputs(f"keep:{outcome.container['output']}",
                                                   int(outcome.container.get("exit_code") or 0))
                    status = outcome.status
                except (WorkflowException, ArchipelagoError, OSError) as exc:
                    self.service.failed(self.key, f"step {self.key} on cluster {outcome.cluster}: its results "
                                                  f"could not be collected: {exc}")
        if self.output_callback is not None:
            lock = runtimeContext.workflow_eval_lock
            if lock is None:
                self.output_callback(outputs, status)
            else:
                with lock:
                    self.output_callback(outputs, status)

    def _given(self) -> list[tuple[str, str]]:
        """(PDH, path) of each keep: File among its inputs (what a tool is handed, it reads)."""
        found = []
        for value in self.builder.job.values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict) and item.get("class") == "File" and \
                        str(item.get("location", "")).startswith(PREFIX):
                    found.append(split(str(item["location"])))
        return found

    def _initial(self, item: Any, directory: str, mounts: dict[str, Any]) -> None:
        """One InitialWorkDir entry as a mount at its place (cwltool gives each its `dirname`: the
        output directory, a subdirectory, or an absolute path in the container); those inside the
        output directory are copied in by the executor, so the tool may change them."""
        if not isinstance(item, dict) or item.get("class") not in ("File", "Directory"):
            return
        target = posixpath.join(str(item.get("dirname") or directory), str(item.get("basename") or ""))
        location = str(item.get("location", ""))
        if location.startswith("file://"):  # named by the tool document itself: uploaded once
            location = self.service.upload(location)
        for secondary in item.get("secondaryFiles") or []:  # staged beside their primary
            self._initial({**secondary, "dirname": posixpath.dirname(target)}, directory, mounts)
        if "contents" in item and item.get("class") == "File":
            mounts[target] = {"kind": "text", "content": item["contents"]}
        elif location.startswith("keep:"):
            pdh, path = split(location)
            mounts[target] = {"kind": "collection", "portable_data_hash": pdh, **({"path": path} if path else {}),
                              "writable": bool(item.get("writable"))}
        elif item.get("class") == "Directory":  # a literal: made here, its entries put in it
            mounts[target] = {"kind": "tmp", "capacity": 0}
            for child in item.get("listing", []) or []:
                self._initial({**child, "dirname": target}, directory, mounts)

    def _required_env(self) -> dict[str, str]:
        """HOME and TMPDIR as the container sees them (CWL requires both)."""
        return {"HOME": self.builder.outdir, "TMPDIR": "/tmp"}

    def status_of(self, code: int) -> str:
        if code in self.successCodes:
            return "success"
        if code in self.temporaryFailCodes:
            return "temporaryFail"
        if code in self.permanentFailCodes:
            return "permanentFail"
        return "success" if code == 0 else "permanentFail"

    def request_attrs(self) -> dict[str, Any]:
        outdir, resources = self.builder.outdir, self.builder.resources
        mounts: dict[str, Any] = {outdir: {"kind": "tmp", "capacity": int(resources.get("outdirMin", 1024)) << 20},
                                  "/tmp": {"kind": "tmp", "capacity": int(resources.get("tmpdirMin", 1024)) << 20}}
        for pdh in sorted(self.pathmapper.collections()):  # type: ignore[attr-defined]
            mounts[f"{KEEP_ROOT}/{pdh}"] = {"kind": "collection", "portable_data_hash": pdh}
        for path, location in self.pathmapper.placed().items():  # type: ignore[attr-defined]
            pdh, inside = split(location)
            mounts[path] = {"kind": "collection", "portable_data_hash": pdh, **({"path": inside} if inside else {})}
        for path, contents in self.pathmapper.literals().items():  # type: ignore[attr-defined]
            mounts[path] = {"kind": "text", "content": contents}
        for item in self.generatefiles.get("listing", []) or []:  # InitialWorkDir: files made in the output dir
            self._initial(item, outdir, mounts)
        if self.stdin:  # a container path: under /keep, or where the file was placed
            placed = self.pathmapper.placed().get(self.stdin)  # type: ignore[attr-defined]
            if placed:
                pdh, path = split(placed)
            else:
                pdh, _, path = self.stdin[len(KEEP_ROOT) + 1:].partition("/")
            mounts["stdin"] = {"kind": "collection", "portable_data_hash": pdh, "path": path}
        for stream in ("stdout", "stderr"):
            if name := getattr(self, stream):
                mounts[stream] = {"kind": "file", "path": posixpath.join(outdir, name)}
        docker, _ = self.get_requirement("DockerRequirement")
        constraints = {"ram": int(resources.get("ram", 256)) << 20, "vcpus": max(1, int(resources.get("cores", 1))),
                       "API": bool(self.networkaccess)}
        return {
            "name": self.name, "command": list(self.command_line), "cwd": outdir, "output_path": outdir,
            "environment": {**self._required_env(), **dict(self.environment)},
            "mounts": mounts, "container_image": docker.get("dockerPull") if docker else None,
            "runtime_constraints": constraints, "state": "Committed", "priority": 500,
            "scheduling_parameters": {"max_run_time": self.timelimit} if self.timelimit else {},
            "use_existing": self.reuse and self._reuse_allowed(),
        }

    def _reuse_allowed(self) -> bool:
        """WorkReuse (CWL v1.1+): a tool may refuse to reuse earlier work (a literal or an expression)."""
        reuse, _ = self.get_requirement("WorkReuse")
        if not reuse:
            return True
        enabled = reuse.get("enableReuse", True)
        if isinstance(enabled, str):
            enabled = self.builder.do_eval(enabled)
        return bool(enabled)
