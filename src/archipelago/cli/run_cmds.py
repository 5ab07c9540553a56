"""`archi run WORKFLOW.cwl [JOB.yml]`: run a CWL workflow across the federation (cwl/runner.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import JsonOpt, ProfileOpt, api_client
from .errors import Typer
from .output import FAILED, errors


def register(root: typer.Typer) -> None:
    root.command("run")(run)


def standalone() -> None:  # pragma: no cover - console entry point
    """`archi-cwl-runner WORKFLOW [JOB]`: the same as `archi run`."""
    app = Typer(add_completion=False)
    app.command()(run)
    app()


def run(
    workflow: Annotated[Path, typer.Argument(help="The CWL workflow or tool.")],
    job: Annotated[Path | None, typer.Argument(help="Its inputs (YAML or JSON).")] = None,
    reuse: Annotated[bool, typer.Option(help="Reuse finished equal steps (a re-run resumes).")] = True,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a workflow: each step on the cluster its arv:ClusterTarget names, else at home; prints
    the output object (its files in a collection saved at home)."""
    from ..cwl.runner import Runner

    seen: dict[str, str] = {}

    def show(steps: dict[str, Any]) -> None:
        for name, step in steps.items():
            line = f"{step.state}{' ' + step.status if step.status else ''}"
            if seen.get(name) != line and not as_json:
                errors.print(f"[bold]{name}[/] on {step.cluster}: {line}"
                             + (f" ({step.seconds:.1f} s)" if step.status else ""), highlight=False)
                seen[name] = line

    runner = Runner(api_client(profile, as_json), reuse=reuse, on_change=show)
    outputs, status = runner.run(workflow, job)
    collection = outputs.pop("_archi_output_collection", None)
    report = {"status": status, "outputs": outputs, "output_collection": collection,
              "steps": [{"name": s.name, "cluster": s.cluster, "request": s.request_uuid, "state": s.state,
                         "status": s.status, "exit_code": s.exit_code, "log": s.log_uuid,
                         "seconds": round(s.seconds, 3)} for s in runner.steps.values()]}
    print(json.dumps(report if as_json else outputs, indent=4))
    if not as_json:
        errors.print(f"final status: {status}" + (f"; output collection {collection}" if collection else ""))
    sys.stdout.flush()
    if status != "success":
        raise typer.Exit(FAILED)
