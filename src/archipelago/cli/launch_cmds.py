"""`archi launch ID -- CMD…`, `archi launch ID --workflow WF.cwl [JOB.yml]` and `archi launch ID --notebook`:
run next to the data.
Resolve, choose a live site that holds it (resolver/launch.py says how and why), submit there with
the dataset mounted, follow it, and bring the results home. `--dry-run` prints the choice and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from .common import JsonOpt, ProfileOpt, api_client
from .compute_cmds import follow, parse_duration, parse_size, summary
from .errors import Typer
from .output import FAILED, emit, errors
from .resolver_cmds import ResolverOpt


def register(root: Typer) -> None:
    root.command()(launch)


def _plan_text(plan: dict[str, Any]) -> str:
    lines = [f"launch at  {plan['site']} (home {plan['home']}): {plan['collection_uuid']} {plan['pdh'] or ''}"]
    lines += [f"because    {reason}" for reason in plan["reasons"]]
    for c in plan["candidates"]:
        verdict = "chosen" if c["site"] == plan["site"] and c["uuid"] == plan["collection_uuid"] else \
            (c["refused"] or "live, not preferred")
        lines.append(f"  {c['site']}  {c['liveness']:<7} {c['uuid']}  inputs held {c['inputs_held']}  {verdict}")
    return "\n".join(lines)


def launch(
    identifier: Annotated[str, typer.Argument(help="The dataset: DOI, ARK, URN, URL, prefix:accession, drs://, keep:")],
    rest: Annotated[list[str] | None, typer.Argument(help="The command (after --); with --workflow, the job file.")]
    = None,
    workflow: Annotated[Path | None, typer.Option(help="A CWL workflow to run at the data's site.")] = None,
    notebook: Annotated[bool, typer.Option("--notebook", help="Start JupyterLab at the data's site, the dataset "
                                                              "mounted read-only; prints its address.")] = False,
    idle: Annotated[float, typer.Option(help="With --notebook: minutes without use before it stops and saves "
                                             "its notebooks.")] = 30,
    dataset_input: Annotated[str, typer.Option(help="With --workflow: the Directory input that receives the "
                                                    "dataset.")] = "dataset",
    site: Annotated[str | None, typer.Option(help="Launch at this site (it must hold the data and be live).")] = None,
    inputs: Annotated[list[str] | None, typer.Option("--input", help="Another identifier the work reads "
                                                     "(repeatable): sites holding more of them are preferred.")]
    = None,
    mount: Annotated[str, typer.Option(help="Where the dataset is mounted in the container.")] = "/data",
    ram: Annotated[str, typer.Option(help="RAM, e.g. 512M or 2G.")] = "256M",
    cpus: Annotated[int, typer.Option(min=1, help="Cores.")] = 1,
    time_limit: Annotated[str | None, typer.Option("--time", help="Time limit, e.g. 30m or 2h.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the choice and why; submit nothing.")] = False,
    wait: Annotated[bool, typer.Option(help="Follow it until it ends and bring the output home.")] = True,
    resolvers: ResolverOpt = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a command or a CWL workflow at a live site that holds the dataset, the dataset mounted at
    /data (a workflow gets it as its `dataset` input); the output comes home."""
    from ..resolver.launch import choose, reachable_from
    from ..resolver.launch import launch as start
    from ..resolver.lookup import resolve, resolver_urls

    home = api_client(profile, as_json)
    urls = resolver_urls(home, resolvers)
    resolution = resolve(identifier, home, urls)
    others = [resolve(i, home, urls) for i in inputs or []]
    home_id, reachable = reachable_from(home)
    plan = choose(resolution, home_id, reachable, others, site)
    if dry_run:
        emit({"plan": plan.as_dict(), "resolver": resolution.resolver}, as_json, _plan_text(plan.as_dict()))
        return
    if not as_json:
        errors.print(_plan_text(plan.as_dict()), highlight=False, markup=False)
    if notebook:
        _notebook(home, plan, mount, idle, as_json)
        return
    if workflow is not None:
        job = Path(rest[0]) if rest else None
        result = start(home, plan, "workflow", workflow=workflow, job=job, dataset_input=dataset_input)
        emit({"plan": plan.as_dict(), **result}, as_json,
             f"workflow {result['status']} at {plan.site}; outputs (saved at {plan.home}):\n{result['outputs']}")
        if result["status"] != "success":
            raise typer.Exit(FAILED)
        return
    request = start(home, plan, "command", command=rest or [], mount=mount, ram=parse_size(ram), cpus=cpus,
                    max_run_time=parse_duration(time_limit) if time_limit else None)
    if not wait:
        emit({"plan": plan.as_dict(), "request": request}, as_json, request["uuid"])
        return
    report = summary(home, follow(home, request["uuid"], show=not as_json))
    report["home_output"] = _bring_home(home, plan.site, home_id, report.get("output_uuid"))
    emit({"plan": plan.as_dict(), **report}, as_json, _result_text(report))
    if report["exit_code"] != 0:
        raise typer.Exit(FAILED)


def _notebook(home: Any, plan: Any, mount: str, idle: float, as_json: bool) -> None:
    """A notebook as one more way to launch at the data (the notebook package's launch mode)."""
    from ..formats.tokens import salt_token
    from ..notebook.session import handoff_scopes, launch_mode
    from ..resolver.launch import launch as start
    from ..resolver.launch import register_mode

    register_mode("notebook", launch_mode)
    started = start(home, plan, "notebook", mount=mount, idle_minutes=idle)
    # the URL (printed, kept in a browser's history) carries a token for this notebook alone, expiring
    expires = (datetime.now(UTC) + timedelta(hours=12)).isoformat()
    handed = home.api_client_authorizations.create({"expires_at": expires,
                                                    "scopes": handoff_scopes(started["request"])})
    token = f"v2/{handed['uuid']}/{handed['api_token']}"
    token = token if plan.site == plan.home else salt_token(token, plan.site)
    login = f"{started['url']}?token={quote(token, safe='')}"
    emit({"plan": plan.as_dict(), **started, "login_url": login}, as_json,
         f"notebook   {started['request']} at {started['cluster']}, the dataset at {mount} (read-only)\n"
         f"open       {login}\n"
         f"stops      after {idle:g} minutes unused, or with `archi notebook stop {started['request']}`; "
         "its notebooks are saved as the request's output")


def _bring_home(home: Any, site: str, home_id: str, output: str | None) -> dict[str, Any] | None:
    """The output collection, copied home (only what home lacks is sent) when it ran elsewhere."""
    if not output:
        return None
    if site == home_id:
        return {"uuid": output, "bytes_sent": 0}
    from ..sdk.copy import FederationCopy

    copied = FederationCopy(home, home_id).copy(output)
    return {"uuid": copied.top.uuid, "bytes_sent": copied.bytes_sent}


def _result_text(report: dict[str, Any]) -> str:
    lines = [f"request    {report['uuid']}",
             f"container  {report['container_uuid']} {report['container_state']} exit code {report['exit_code']}"]
    if report["output_uuid"]:
        lines.append(f"output     {report['output_uuid']} ({report['output_pdh']})")
    if report.get("home_output"):
        lines.append(f"at home    {report['home_output']['uuid']} ({report['home_output']['bytes_sent']} bytes sent)")
    if report["error"]:
        lines.append(f"error      {report['error']}")
    return "\n".join(lines)
