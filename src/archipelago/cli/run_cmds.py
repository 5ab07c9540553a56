"""`archi run WORKFLOW.cwl [JOB.yml]` (also `archi-cwl-runner`): run a CWL workflow across the
federation (cwl/runner.py). The plan comes first — where each step and record will run and why,
its project, the input collections, the bytes that may cross between clusters — then a live view
of the steps, the output object, and what moved beside what the plan allowed. `--plan` prints the
plan alone; a plan that refuses the run exits 2 with every problem, and nothing is submitted."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from .. import __version__
from .common import JsonOpt, ProfileOpt, api_client
from .errors import Typer
from .output import BAD_INPUT, FAILED, errors, fail, literal, note


def register(root: typer.Typer) -> None:
    root.command("run")(run)


def standalone() -> None:  # pragma: no cover - console entry point
    """`archi-cwl-runner WORKFLOW [JOB]`: the same as `archi run`."""
    app = Typer(add_completion=False)
    app.command()(run)
    app()


def version_text() -> str:
    from cwltool.main import versionstring

    return f"archi-cwl-runner {__version__} (cwltool {versionstring().split()[-1]})"


def _print_version(wanted: bool) -> None:
    if wanted:
        print(version_text())
        raise typer.Exit()


def steps_table(steps: dict[str, Any]) -> Table:
    from ..cwl.render import size

    table = Table("step", "cluster", "state", "time", "read (by cluster)", box=None, pad_edge=False)
    now = time.monotonic()
    for step in steps.values():
        seconds = step.seconds or now - step.started
        state = f"{step.state} {step.status}".strip()
        read = ", ".join(f"{size(n)} {c}" for c, n in sorted(step.read_from.items()))
        table.add_row(literal(step.key or step.name), literal(step.cluster), literal(state), f"{seconds:.1f} s",
                      literal(read))
    return table


RUN_COMMANDS = ("status", "wait", "logs")


def run(
    workflow: Annotated[str, typer.Argument(help="The CWL workflow or tool; or status|wait|logs.")],
    job: Annotated[str | None, typer.Argument(help="Its inputs (YAML or JSON); or the RUN (a request UUID).")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Print the plan (where each step and record runs, "
                                                      "why, the bytes that may cross) and stop; exit 2 if "
                                                      "it refuses the run.")] = False,
    reuse: Annotated[bool, typer.Option(help="Reuse finished equal steps (a re-run resumes).")] = True,
    submit: Annotated[bool, typer.Option(help="Run the runner itself as a container on the home cluster.")] = False,
    wait: Annotated[bool, typer.Option(help="With --submit: follow it to the end.")] = True,
    prestage: Annotated[bool, typer.Option(help="Copy each step's inputs to its cluster before it runs "
                                                 "(default: read on demand).")] = False,
    outdir: Annotated[str | None, typer.Option(help="Also copy the output files into this directory (as "
                                                   "cwltool does; they stay in their collection at home too).")]
    = None,
    quiet: Annotated[bool, typer.Option(help="No plan and no live view (as cwltool's --quiet).")] = False,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print the version and exit.")] = False,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a workflow: each step on the cluster its arv:ClusterTarget names, else at home. Prints
    the plan, then the output object (its files in a collection saved at home), then the bytes
    moved beside the plan's bounds. `--submit` runs the runner on the home cluster (`--no-wait`
    returns at once); `archi run status|wait|logs RUN` follow such a run."""
    if workflow in RUN_COMMANDS and job and not Path(workflow).exists():
        return follow_submitted(workflow, job, profile, as_json)
    from ..cwl.runner import Refused

    try:
        if plan:
            return show_plan(Path(workflow), Path(job) if job else None, reuse, profile, as_json)
        if submit:
            return submit_run(Path(workflow), Path(job) if job else None, reuse, wait, profile, as_json, prestage)
        return run_here(Path(workflow), Path(job) if job else None, reuse, prestage, outdir, quiet, profile, as_json)
    except Refused as exc:
        refused(exc, as_json)


def refused(exc: Any, as_json: bool) -> None:
    """The plan refuses the run: it is shown with every problem; exit 2."""
    runner = exc.runner
    if as_json:
        print(json.dumps({"error": str(exc), "exit_code": BAD_INPUT, "plan": runner.plan_.as_dict(runner.facts)},
                         indent=4))
        raise typer.Exit(BAD_INPUT)
    note(runner.plan_text())
    fail(str(exc).splitlines()[0], BAD_INPUT)


def show_plan(workflow: Path, job: Path | None, reuse: bool, profile: str | None, as_json: bool) -> None:
    from ..cwl.bounds import crossings
    from ..cwl.render import plan_text
    from ..cwl.runner import Runner

    runner = Runner(api_client(profile, as_json), reuse=reuse)
    plan = runner.plan(workflow, job)
    pairs = crossings(plan, runner.facts)
    if as_json:
        print(json.dumps({**plan.as_dict(runner.facts), "crossings": [c.as_dict() for c in pairs.values()]},
                         indent=4))
    else:
        print(plan_text(plan, runner.facts, pairs))
    if plan.refusals():
        raise typer.Exit(BAD_INPUT)


def run_here(workflow: Path, job: Path | None, reuse: bool, prestage: bool, outdir: str | None, quiet: bool,
             profile: str | None, as_json: bool) -> None:
    from cwltool.errors import WorkflowException

    from ..cwl.runner import Runner

    live = Live(Table(), console=errors, refresh_per_second=4, transient=False) if not (as_json or quiet) else None

    def show(steps: Any) -> None:  # the live view starts with the first step (not before an input error)
        if live is not None:
            if not live.is_started:
                live.start()
            live.update(steps_table(steps))

    def planned(runner: Runner) -> None:
        if live is not None:
            note(runner.plan_text())

    runner = Runner(api_client(profile, as_json), reuse=reuse, prestage=prestage, on_change=show, on_plan=planned)
    try:
        outputs, status = runner.run(workflow, job)
    except WorkflowException as exc:  # a tool run alone that cwltool cannot make a job of
        fail(" ".join(str(exc).split()), FAILED, as_json)
    finally:
        if live is not None and live.is_started:
            live.update(steps_table(runner.steps))
            live.stop()
    collection = outputs.pop("_archi_output_collection", None)
    if outdir is not None and status == "success":  # as cwltool does: the output files on this disk too
        from ..cwl.outputs import download_outputs

        download_outputs(runner.home, outputs, Path(outdir))
    print(json.dumps(report(runner, outputs, status, collection) if as_json else outputs, indent=4))
    if not as_json:
        per_cluster = steps_per_cluster(runner)
        where = ", ".join(f"{n} on {c}" for c, n in sorted(per_cluster.items())) or "none"
        note("")
        note(f"steps: {where}")
        if not quiet:
            note(runner.moved_text())
        note(f"final status: {status}" + (f"; output collection {collection}" if collection else ""))
        for failure in runner.failures:
            note(failure, "red")
    sys.stdout.flush()
    if status != "success":
        raise typer.Exit(FAILED)


def steps_per_cluster(runner: Any) -> dict[str, int]:
    from ..cwl.report import steps_per_cluster as per_cluster

    return per_cluster(runner)


def report(runner: Any, outputs: dict[str, Any], status: str, collection: str | None) -> dict[str, Any]:
    """What `--json` prints (and a submitted runner saves as report.json, which WES reads): cwl/report.py's."""
    from ..cwl.report import run_report

    return run_report(runner, outputs, status, collection)


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
    from ..cwl.submit import children
    from ..cwl.submit import report as saved_report
    from .compute_cmds import follow

    client = api_client(profile, as_json)
    request = client.container_requests.get(run_uuid)
    if command == "logs":
        from .compute_cmds import container_logs

        return container_logs(run_uuid, file="", profile=profile, as_json=as_json)
    if command == "wait":
        request = follow(client, run_uuid, show=not as_json)
    result = saved_report(client, request)
    steps = [{"name": c["name"], "request": c["uuid"], "state": c["state"]} for c in children(client, request)]
    status = {"run": run_uuid, "state": request["state"], "steps_here": steps, "report": result}
    if as_json:
        print(json.dumps(status, indent=4))
    else:
        note(f"run {run_uuid}: {request['state']}")
        for step in steps:
            note(f"  {step['name']}: {step['state']} ({step['request']})")
        if result is not None:
            print(json.dumps(result["outputs"], indent=4))
            note(f"final status: {result['status']}; output collection {result['output_collection']}")
    if request["state"] == "Final" and (result is None or result["status"] != "success"):
        raise typer.Exit(FAILED)


def emit_json_or_text(data: dict[str, Any], as_json: bool, text: str) -> None:
    print(json.dumps(data, indent=4) if as_json else text)
