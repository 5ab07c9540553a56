"""`archi run --submit`: the runner itself as a container on the home cluster, so the user can
disconnect. The workflow's documents (the files it runs and imports, found as `cwltool
--print-deps` finds them; not packed, which loses the Arvados extensions) and its inputs (local
files uploaded first) are saved in a collection the runner container mounts; the runner's report
is its output. Its container requests are the runner's children (they inherit its priority and
end with it)."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from cwltool.context import LoadingContext
from cwltool.load_tool import fetch_document
from cwltool.main import find_deps

from ..sdk.client import ApiClient
from ..sdk.collection import Collection
from .joborder import upload_local_inputs
from .runner import Refused, Runner
from .tags import REPORT_IN_OUTPUT_ENV, RUN, RUN_ID_ENV, WORKFLOW

MOUNT = "/var/lib/archi-run"
REPORT = "report.json"


def submit(client: ApiClient, workflow: Path, job: Path | None, reuse: bool = True,
           prestage: bool = False) -> dict[str, Any]:
    """Plan the run (refused up front, as `archi run` refuses it: nothing is written then), upload
    the workflow and its inputs, and commit the runner's container request; returns it."""
    runner = Runner(client, reuse=reuse)
    _, job_order, basedir, plan = runner.prepare(workflow, job)
    if plan.refusals():
        raise Refused(runner)
    path, hash_sign, fragment = str(workflow).partition("#")
    workflow = Path(path)
    documents = workflow_documents(workflow.resolve())
    root = Path(os.path.commonpath([str(p.parent) for p in documents]))
    upload_local_inputs(client, job_order, basedir)
    bundle = Collection(client)
    for document in documents:
        bundle.write(f"workflow/{document.relative_to(root)}", document.read_bytes())
    bundle.write("job.json", json.dumps(job_order).encode())
    main = f"{MOUNT}/workflow/{workflow.resolve().relative_to(root)}{hash_sign}{fragment}"
    saved = bundle.save_new(f"workflow and inputs of archi run {workflow.name}")
    options = ("" if reuse else "--no-reuse ") + ("--prestage " if prestage else "")
    command = ["sh", "-c", f"archi run --json {options}{shlex.quote(main)} {MOUNT}/job.json > {REPORT}"]
    attrs = {"name": f"archi run {workflow.name}", "command": command, "container_image": None,
             "output_path": "/out", "cwd": "/out", "state": "Committed", "priority": 500,
             "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 30},
                        MOUNT: {"kind": "collection", "portable_data_hash": saved["portable_data_hash"]}},
             "runtime_constraints": {"ram": 1 << 30, "vcpus": 1, "API": True},
             # its steps carry the same run id as this request; its report is its output (report.json)
             "environment": {RUN_ID_ENV: runner.run_id, REPORT_IN_OUTPUT_ENV: "1"},
             "properties": {"type": "archi-run", "workflow": workflow.name, RUN: runner.run_id,
                            WORKFLOW: workflow.name},
             "use_existing": False}
    return client.container_requests.create(attrs)


def workflow_documents(workflow: Path) -> list[Path]:
    """The workflow file and every document it runs, imports or includes (local files only)."""
    loading = LoadingContext({"relax_path_checks": True})
    # a URI, not a path: cwltool says "Resolved 'x' to 'file://…'" of every path it resolves
    loading, document, uri = fetch_document(workflow.as_uri(), loading)
    assert loading.loader is not None
    deps = find_deps(document, loading.loader, uri)
    found: list[Path] = []

    def visit(entry: Any) -> None:
        location = str(entry.get("location", ""))
        if location.startswith("file://"):
            found.append(Path(unquote(urlsplit(location).path)))
        for child in entry.get("secondaryFiles", []) or []:
            visit(child)

    visit(deps)
    return sorted(set(found))


def report(client: ApiClient, request: dict[str, Any]) -> dict[str, Any] | None:
    """The runner's report, once it has ended (None before)."""
    if request["state"] != "Final" or not request.get("output_uuid"):
        return None
    try:
        return dict(json.loads(Collection(client, request["output_uuid"]).read(REPORT)))
    except (FileNotFoundError, ValueError):
        return None


def children(client: ApiClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps the runner has submitted (at home: steps on other clusters appear in its report)."""
    if not request.get("container_uuid"):
        return []
    return list(client.container_requests.list([["requesting_container_uuid", "=", request["container_uuid"]]],
                                               order=["created_at asc"], limit=1000)["items"])
