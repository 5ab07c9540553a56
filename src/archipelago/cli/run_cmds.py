"""`archi run WORKFLOW.cwl [JOB.yml]` (also `archi-cwl-runner`): run a CWL workflow across the
federation (cwl/runner.py), with a live view of its steps and, at the end, where they ran and the
bytes that moved between clusters."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

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


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def steps_table(steps: dict[str, Any]) -> Table:
    table = Table("step", "cluster", "state", "time", "read (by cluster)", box=None, pad_edge=False)
    now = time.monotonic()
    for name, step in steps.items():
        seconds = step.seconds or now - step.started
        state = f"{step.state} {step.status}".strip()
        read = ", ".join(f"{_size(n)} {c}" for c, n in sorted(step.read_from.items()))
        table.add_row(name, step.cluster, state, f"{seconds:.1f} s", read)
    return table


RUN_COMMANDS = ("status", "wait", "logs")


def run(
    workflow: Annotated[str, typer.Argument(help="The CWL workflow or tool; or status|wait|logs.")],
    job: Annotated[str | None, typer.Argument(help="Its inputs (YAML or JSON); or the RUN (a request UUID).")] = None,
    reuse: Annotated[bool, typer.Option(help="Reuse finished equal steps (a re-run resumes).")] = True,
    submit: Annotated[bool, typer.Option(help="Run the runner itself as a container on the home cluster.")] = False,
    wait: Annotated[bool, typer.Option(help="With --submit: follow it to the end.")] = True,
    prestage: Annotated[bool, typer.Option(help="Copy each step's inputs to its cluster before it runs "
                                                 "(default: read on demand).")] = False,
    outdir: Annotated[str | None, typer.Option(help="Accepted for cwltool compatibility (cwltest passes it): "
                                                   "outputs stay in Keep, in a collection at home.")] = None,
    quiet: Annotated[bool, typer.Option(help="No live view (as cwltool's --quiet).")] = False,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a workflow: each step on the cluster its arv:ClusterTarget names, else at home; prints
    the output object (its files in a collection saved at home). `--submit` runs the runner on the
    home cluster (`--no-wait` returns at once); `archi run status|wait|logs RUN` follow such a run."""
    from ..cwl.runner import Runner

    if workflow in RUN_COMMANDS and job and not Path(workflow).exists():
        return follow_submitted(workflow, job, profile, as_json)
    if submit:
        return submit_run(Path(workflow), Path(job) if job else None, reuse, wait, profile, as_json, prestage)

    live = Live(Table(), console=errors, refresh_per_second=4, transient=False) if not (as_json or quiet) else None

    def show(steps: Any) -> None:  # the live view starts with the first step (not before an input error)
        if live is not None:
            if not live.is_started:
                live.start()
            live.update(steps_table(steps))

    runner = Runner(api_client(profile, as_json), reuse=reuse, prestage=prestage, on_change=show)
    try:
        outputs, status = runner.run(Path(workflow), Path(job) if job else None)
    finally:
        if live is not None and live.is_started:
            live.update(steps_table(runner.steps))
            live.stop()
    collection = outputs.pop("_archi_output_collection", None)
    if outdir is not None and status == "success":  # as cwltool does: the output files on this disk too
        from ..cwl.runner import download_outputs

        download_outputs(runner.home, outputs, Path(outdir))
    per_cluster: dict[str, int] = {}
    for step in runner.steps.values():
        per_cluster[step.cluster] = per_cluster.get(step.cluster, 0) + 1
    report = {"status": status, "outputs": outputs, "output_collection": collection, "failures": runner.failures,
              "steps_per_cluster": per_cluster, "bytes_moved": runner.moved(),
              "steps": [{"name": s.name, "cluster": s.cluster, "request": s.request_uuid, "state": s.state,
                         "status": s.status, "exit_code": s.exit_code, "log": s.log_uuid,
                         "read_from": s.read_from, "seconds": round(s.seconds, 3)} for s in runner.steps.values()]}
    print(json.dumps(report if as_json else outputs, indent=4))
    if not as_json:
        moved = ", ".join(f"{edge} {_size(n)}" for edge, n in sorted(report["bytes_moved"].items())) or "nothing"
        where = ", ".join(f"{n} on {c}" for c, n in sorted(per_cluster.items()))
        errors.print("")
        errors.print(f"steps: {where}; moved between clusters: {moved}")
        errors.print(f"final status: {status}" + (f"; output collection {collection}" if collection else ""))
        for failure in runner.failures:
            errors.print(f"[red]{failure}[/]")
    sys.stdout.flush()
    if status != "success":
        raise typer.Exit(FAILED)


def submit_run(workflow: Path, job: Path | None, reuse: bool, wait: bool, profile: str | None, as_json: bool,
               prestage: bool = False) -> None:
    from ..cwl.submit import submit

    client = api_client(profile, as_json)
    request = submit(client, workflow, job, reuse, prestage)
    if not wait:
        emit_json_or_text({"run": request["uuid"], "state": request["state"]}, as_json, request["uuid"])
        return
    follow_submitted("wait", request["uuid"], profile, as_json)


def follow_submitted(command: str, run_uuid: str, profile: str | None, as_json: bool) -> None:
    """status: where the run is; wait: follow it to the end and print its outputs; logs: its log."""
    from ..cwl.submit import children, report
    from .compute_cmds import follow

    client = api_client(profile, as_json)
    request = client.container_requests.get(run_uuid)
    if command == "logs":
        from .compute_cmds import container_logs

        return container_logs(run_uuid, file="", profile=profile, as_json=as_json)
    if command == "wait":
        request = follow(client, run_uuid, show=not as_json)
    result = report(client, request)
    steps = [{"name": c["name"], "request": c["uuid"], "state": c["state"]} for c in children(client, request)]
    status = {"run": run_uuid, "state": request["state"], "steps_here": steps, "report": result}
    if as_json:
        print(json.dumps(status, indent=4))
    else:
        errors.print(f"run {run_uuid}: {request['state']}")
        for step in steps:
            errors.print(f"  {step['name']}: {step['state']} ({step['request']})")
        if result is not None:
            print(json.dumps(result["outputs"], indent=4))
            errors.print(f"final status: {result['status']}; output collection {result['output_collection']}")
    if request["state"] == "Final" and (result is None or result["status"] != "success"):
        raise typer.Exit(FAILED)


def emit_json_or_text(data: dict[str, Any], as_json: bool, text: str) -> None:
    print(json.dumps(data, indent=4) if as_json else text)
