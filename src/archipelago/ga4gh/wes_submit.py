"""WES `POST /runs`: the attachments and `workflow_params` are saved in a collection (the caller's,
through the Backend), and a runner container request is committed that runs `archi run` on them —
the shape `archi run --submit` gives its runner, so the run outlives the HTTP call and the runner is the one `archi run`
uses. Nothing of the workflow is loaded in the API server: a workflow's `$include: /etc/…` or an
input `file:///…` is read inside the runner's sandbox, which shows none of the cluster's files.

`workflow_url` is one of the attachments (a relative path, `#fragment` allowed) or a `keep:PDH/path`
of a collection the caller may read (mounted beside the attachments)."""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..backend.interface import Backend, Caller, Record
from ..cwl.tags import REPORT_IN_OUTPUT_ENV, RUN, RUN_ID_ENV, WORKFLOW, new_run_id
from ..errors import ArchipelagoError, BadRequest
from ..formats.manifest import render
from ..keep.client import KeepClient
from ..keep.writer import ManifestWriter
from .paths import file_path, object_id
from .wes import CWL_VERSIONS, ENGINE, MOUNT, REPORT, RUN_TYPE

WORKFLOW_MOUNT = "/var/lib/archi-workflow"  # a keep: workflow_url's collection
FIELDS = frozenset({"workflow_params", "workflow_type", "workflow_type_version", "tags", "workflow_engine",
                    "workflow_engine_version", "workflow_engine_parameters", "workflow_url"})
ENGINE_PARAMETERS = {"reuse": True, "prestage": False}


@dataclass
class RunRequest:
    workflow_url: str
    workflow_type_version: str
    workflow_params: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)
    engine_parameters: dict[str, bool] = field(default_factory=dict)
    attachments: dict[str, bytes] = field(default_factory=dict)


def _json_object(name: str, text: str | None) -> dict[str, Any]:
    if text in (None, ""):
        return {}
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError as exc:
        raise BadRequest(f"{name} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be a JSON object, not {type(value).__name__}")
    return value


def _flag(name: str, value: Any) -> bool:
    text = str(value).lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise BadRequest(f"workflow_engine_parameters.{name} must be true or false, not {value!r}")
    return text in ("true", "1", "yes")


def parse_run_request(fields: Mapping[str, Any], files: list[tuple[str, bytes]]) -> RunRequest:
    """A RunRequest from the form's fields and attached files (400 naming what is wrong)."""
    if unknown := sorted(set(fields) - FIELDS):
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; a run request has {', '.join(sorted(FIELDS))}")
    for name, value in fields.items():
        if not isinstance(value, str | dict):
            raise BadRequest(f"{name} must be given once, as text")
    if fields.get("workflow_type") != "CWL":
        raise BadRequest(f"workflow_type must be CWL (this service runs CWL workflows), not "
                         f"{fields.get('workflow_type')!r}")
    version = fields.get("workflow_type_version")
    if version not in CWL_VERSIONS:
        raise BadRequest(f"workflow_type_version must be one of {', '.join(CWL_VERSIONS)}, not {version!r}")
    engine = fields.get("workflow_engine")
    if engine not in (None, "", ENGINE, "cwltool"):
        raise BadRequest(f"workflow_engine must be {ENGINE}, not {engine!r}")
    attachments: dict[str, bytes] = {}
    for name, data in files:
        path = file_path(name.lstrip("/")) if name else ""
        if not path:
            raise BadRequest("every workflow_attachment needs a file name")
        attachments[path] = data
    url = fields.get("workflow_url")
    if not isinstance(url, str) or not url:
        raise BadRequest("workflow_url is required: an attached file's name or keep:PDH/path")
    if url.startswith("keep:"):
        target = object_id(url[5:].partition("#")[0])
        if not target.path:
            raise BadRequest(f"workflow_url {url!r} names a collection, not a workflow file in it")
    elif "://" in url or url.startswith(("file:", "/")):
        raise BadRequest(f"workflow_url {url!r}: this service runs attached workflows (a relative path naming one "
                         "of workflow_attachment) or keep:PDH/path; it does not fetch URLs or read its own files")
    elif file_path(url.partition("#")[0]) not in attachments:
        raise BadRequest(f"workflow_url {url!r} is none of the attached files ({', '.join(sorted(attachments))})")
    tags = _json_object("tags", fields.get("tags"))
    engine_parameters = _json_object("workflow_engine_parameters", fields.get("workflow_engine_parameters"))
    if unknown := sorted(set(engine_parameters) - set(ENGINE_PARAMETERS)):
        raise BadRequest(f"workflow_engine_parameters: unknown {', '.join(unknown)} (known: "
                         f"{', '.join(ENGINE_PARAMETERS)})")
    return RunRequest(url, str(version), _json_object("workflow_params", fields.get("workflow_params")),
                      {str(k): str(v) for k, v in tags.items()},
                      {k: _flag(k, v) for k, v in engine_parameters.items()}, attachments)


def _bundle(backend: Backend, caller: Caller, keep: KeepClient, run: RunRequest) -> Record:
    """The attachments and job.json in a collection of the caller's (`keep` stores blocks with their token)."""
    uploader = keep.uploader()
    writer = ManifestWriter(uploader.submit)
    for path, data in sorted(run.attachments.items()):
        writer.write_file(path, data)
    writer.write_file("job.json", json.dumps(run.workflow_params).encode())
    tree = writer.finish_tree()
    uploader.close()
    return backend.create(caller, "collections", {"manifest_text": render(tree),
                                                  "name": f"workflow and inputs of WES run {run.workflow_url}"},
                          ensure_unique_name=True)


def submit_run(backend: Backend, caller: Caller, keep: KeepClient, run: RunRequest) -> str:
    """Commit the runner's container request; its UUID is the run id."""
    bundle = _bundle(backend, caller, keep, run)
    mounts: dict[str, Any] = {"/out": {"kind": "tmp", "capacity": 1 << 30},
                              MOUNT: {"kind": "collection", "portable_data_hash": bundle["portable_data_hash"]}}
    if run.workflow_url.startswith("keep:"):
        target = object_id(run.workflow_url[5:].partition("#")[0])
        fragment = run.workflow_url.partition("#")[2]
        mounts[WORKFLOW_MOUNT] = {"kind": "collection", "portable_data_hash": target.pdh}
        main = f"{WORKFLOW_MOUNT}/{target.path}" + (f"#{fragment}" if fragment else "")
    else:
        main = f"{MOUNT}/{run.workflow_url}"
    parameters = {**ENGINE_PARAMETERS, **run.engine_parameters}
    options = ("" if parameters["reuse"] else "--no-reuse ") + ("--prestage " if parameters["prestage"] else "")
    command = ["sh", "-c", f"archi run --json {options}{shlex.quote(main)} {MOUNT}/job.json > {REPORT}"]
    name = run.workflow_url.rsplit("/", 1)[-1]
    run_id = new_run_id(str(bundle["uuid"])[:5])  # the cluster the run starts from
    attrs = {"name": f"WES run {name}", "command": command, "container_image": None, "output_path": "/out",
             "cwd": "/out", "state": "Committed", "priority": 500, "mounts": mounts,
             "runtime_constraints": {"ram": 1 << 30, "vcpus": 1, "API": True}, "use_existing": False,
             # its steps carry the run's id, as with `archi run --submit`; its report is its output
             "environment": {RUN_ID_ENV: run_id, REPORT_IN_OUTPUT_ENV: "1"},
             "properties": {"type": RUN_TYPE, "workflow": name, RUN: run_id, WORKFLOW: name,
                            "wes": {"workflow_url": run.workflow_url,
                                    "workflow_type_version": run.workflow_type_version, "tags": run.tags,
                                    "workflow_engine_parameters": run.engine_parameters}}}
    try:
        return str(backend.create(caller, "container_requests", attrs)["uuid"])
    except ArchipelagoError:  # refused (a mount the caller may not read, a quota): no run, no leftovers
        with contextlib.suppress(ArchipelagoError):
            backend.trash(caller, "collections", bundle["uuid"])
        raise
