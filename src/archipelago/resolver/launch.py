"""Launching work next to the data (`archi launch`): resolve an identifier, choose a live site that
holds it, and submit there with the dataset mounted; results come home as with any federated step.

The choice, in order (each holder's fate and the reason are kept, for `--dry-run`):
1. a collection (a project cannot be mounted), on a site that is live now;
2. a site the home cluster can reach (itself, or one of its remote clusters): the request is
   submitted through the home cluster, which routes it;
3. restricted data is processed only where it is: launching always runs at the holder, on its own
   copy, so a `residency: cluster` dataset is never read from elsewhere (a holder that could only
   be reached by copying is never chosen);
4. among several, the site holding most of the inputs (the dataset and each `--input`), then home
   (no boundary to cross), then the most recently seen.

Modes: "command" (a container request) and "workflow" (`archi run` of a CWL workflow whose steps
without their own ClusterTarget run at the chosen site). Another mode (a notebook) registers a
function with `register_mode`; `launch(...)` calls it with the plan.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ArchipelagoError, Unavailable, Unprocessable
from ..sdk.client import ApiClient
from .lookup import Resolution


@dataclass
class Plan:
    identifier: str
    site: str
    home: str
    collection_uuid: str
    pdh: str | None
    residency: str | None
    reasons: list[str]
    candidates: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose(resolution: Resolution, home: str, reachable: set[str], inputs: list[Resolution] | None = None,
           site: str | None = None) -> Plan:
    """The site to launch at, and why; Unavailable or Unprocessable saying why none will do."""
    if not resolution.holders:
        alone = "" if resolution.resolver else " (the home cluster alone was asked: no resolver answered)"
        raise Unprocessable(f"no site is known to hold {resolution.identifier}{alone}")
    _same_content(resolution, site)
    held_by = [{h["site"] for h in r.holders} for r in inputs or []]
    candidates, fit = [], []
    for holder in resolution.holders:
        why = None
        if holder["kind"] != "collection":
            why = f"a {holder['kind']}, not a collection to mount"
        elif site is not None and holder["site"] != site:
            why = f"not the site asked for ({site})"
        elif holder["liveness"] != "live":
            seen = holder.get("last_seen")
            why = f"{holder['liveness']} (last seen {'never' if seen is None else f'at {seen:.0f}'})"
        elif holder["site"] not in reachable:
            why = f"not reachable from the home cluster {home} (not among its remote clusters)"
        score = 1 + sum(holder["site"] in sites for sites in held_by)
        candidates.append({"site": holder["site"], "uuid": holder["uuid"], "liveness": holder["liveness"],
                           "residency": holder.get("residency"), "inputs_held": score, "refused": why})
        if why is None:
            fit.append((holder, score))
    if not fit:
        refusals = "; ".join(f"{c['site']} {c['uuid']}: {c['refused']}" for c in candidates)
        error = Unprocessable if site is not None else Unavailable
        raise error(f"no live site the home cluster can reach holds {resolution.identifier}: {refusals}")
    fit.sort(key=lambda f: (-f[1], f[0]["site"] != home, -(f[0].get("last_seen") or 0), f[0]["site"]))
    best, score = fit[0]
    reasons = [f"{best['site']} holds {resolution.identifier} as {best['uuid']} and is live",
               f"{best['site']} is {'the home cluster' if best['site'] == home else 'reachable from ' + home}"]
    if len(fit) > 1:
        reasons.append(f"of {len(fit)} live holders, it holds most inputs ({score} of {1 + len(held_by)})"
                       + (", and is home" if best["site"] == home else ""))
    if best.get("residency"):
        reasons.append(f"the data stays on {best['site']} (residency '{best['residency']}'): it runs where it is")
    return Plan(resolution.identifier, best["site"], home, best["uuid"], best.get("pdh"), best.get("residency"),
                reasons, candidates)


def _same_content(resolution: Resolution, site: str | None) -> None:
    """Anyone who may write a collection may publish any identifier on it: when the holders (at `site`,
    if given) name different content, which one is the dataset is not ours to guess (a squatter would
    win by being home or seen last). Unprocessable naming each content and who holds it."""
    held: dict[str, list[str]] = {}
    for holder in resolution.holders:
        if holder["kind"] == "collection" and holder.get("pdh") and site in (None, holder["site"]):
            held.setdefault(str(holder["pdh"]), []).append(f"{holder['site']} {holder['uuid']}")
    if len(held) > 1:
        named = "; ".join(f"{pdh} at {', '.join(where)}" for pdh, where in sorted(held.items()))
        raise Unprocessable(f"the holders of {resolution.identifier} hold different content ({named}): check which "
                            "is the dataset and launch at that site with --site, or by its content (keep:PDH)")


def reachable_from(home: ApiClient) -> tuple[str, set[str]]:
    config = home.config()
    home_id = str(config["ClusterID"])
    return home_id, {home_id, *(config.get("RemoteClusters") or {})}


# ---------------------------------------------------------------- modes
Mode = Callable[..., dict[str, Any]]
MODES: dict[str, Mode] = {}


def register_mode(name: str, mode: Mode) -> None:
    """A way to launch at the data's site: `mode(home, plan, **options) -> dict` (what it started)."""
    MODES[name] = mode


def launch(home: ApiClient, plan: Plan, mode: str, **options: Any) -> dict[str, Any]:
    if mode not in MODES:
        raise Unprocessable(f"no launch mode {mode!r} (modes: {', '.join(sorted(MODES))})")
    return MODES[mode](home, plan, **options)


def submit_command(home: ApiClient, plan: Plan, command: list[str], mount: str = "/data", ram: int = 256 << 20,
                   cpus: int = 1, max_run_time: int | None = None, name: str | None = None) -> dict[str, Any]:
    """A container request at the chosen site, through the home cluster (it routes by cluster_id and
    issues the runtime token), the dataset mounted read-only at `mount`; /out is its output."""
    if not command:
        raise Unprocessable("give the command to run after --")
    attrs = {"name": name or f"launch at {plan.site}: {' '.join(command)}"[:200], "command": command,
             "output_path": "/out", "cwd": "/out", "priority": 500, "state": "Committed",
             "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 30},
                        mount: {"kind": "collection", "uuid": plan.collection_uuid}},
             "runtime_constraints": {"ram": ram, "vcpus": cpus},
             "scheduling_parameters": {"max_run_time": max_run_time} if max_run_time else {},
             "properties": {"launched_for": plan.identifier}}
    params = {"cluster_id": plan.site} if plan.site != plan.home else None
    return home.request("POST", "container_requests", params, {"container_request": attrs})


register_mode("command", submit_command)


def _ports(document: dict[str, Any], key: str) -> dict[str, Any]:
    """A CWL document's inputs or outputs as {id: definition} (list or map form)."""
    ports = document.get(key) or {}
    if isinstance(ports, list):
        return {str(p["id"]).lstrip("#").rsplit("/", 1)[-1]: {k: v for k, v in p.items() if k != "id"} for p in ports}
    return {k: v if isinstance(v, dict) else {"type": v} for k, v in ports.items()}


def wrapper_workflow(workflow: Path, plan: Plan, dataset_input: str) -> dict[str, Any]:
    """A workflow running `workflow` as one step at the chosen site (its ClusterTarget hint reaches every
    step without one of its own), the dataset given as its input `dataset_input`."""
    try:
        document = yaml.safe_load(workflow.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise Unprocessable(f"cannot read workflow {workflow}: {exc}") from None
    if not isinstance(document, dict) or "$graph" in document:
        raise Unprocessable(f"{workflow}: launch takes a workflow or tool document (not a packed $graph)")
    inputs, outputs = _ports(document, "inputs"), _ports(document, "outputs")
    if dataset_input not in inputs:
        raise Unprocessable(f"{workflow} has no input {dataset_input!r} to give the dataset to (its inputs: "
                            f"{', '.join(inputs) or 'none'}); name one with --dataset-input")
    kind = inputs[dataset_input].get("type")
    if kind not in ("Directory", "Directory?") or plan.pdh is None:
        raise Unprocessable(f"input {dataset_input!r} must be a Directory to receive the dataset, not {kind!r}")
    passed = {k: {"type": v.get("type")} for k, v in inputs.items() if k != dataset_input}
    step_in: dict[str, Any] = {k: k for k in passed}
    step_in[dataset_input] = {"default": {"class": "Directory", "location": f"keep:{plan.pdh}"}}
    return {
        "cwlVersion": document.get("cwlVersion", "v1.2"), "class": "Workflow",
        "$namespaces": {"arv": "http://arvados.org/cwl#"},
        "requirements": [{"class": "SubworkflowFeatureRequirement"}],
        "inputs": passed,
        "outputs": {k: {"type": v.get("type"), "outputSource": f"at_data/{k}"} for k, v in outputs.items()},
        "steps": {"at_data": {"run": str(workflow.resolve()), "in": step_in, "out": list(outputs),
                              "hints": [{"class": "arv:ClusterTarget", "cluster_id": plan.site}]}},
    }


def run_workflow(home: ApiClient, plan: Plan, workflow: Path, job: Path | None = None,
                 dataset_input: str = "dataset", on_change: Any = None) -> dict[str, Any]:
    """`archi run` of the workflow at the chosen site; its outputs are saved at home by the runner."""
    from ..cwl.runner import Runner

    wrapper = wrapper_workflow(Path(workflow), plan, dataset_input)
    with tempfile.TemporaryDirectory(prefix="archi-launch-") as scratch:
        path = Path(scratch) / f"launch-{Path(workflow).stem}.cwl"
        path.write_text(yaml.safe_dump(wrapper, sort_keys=False))
        runner = Runner(home, on_change=on_change)
        try:
            outputs, status = runner.run(path, Path(job) if job else None)
        except ArchipelagoError:
            raise
        except Exception as exc:  # cwltool's own errors: the workflow, not us
            raise Unprocessable(f"workflow {workflow}: {exc}") from None
    recorded: Any = getattr(runner, "steps", None) or []
    steps = [{key: getattr(s, key, None) for key in ("name", "cluster", "state")}
             for s in (recorded.values() if isinstance(recorded, dict) else recorded)]
    return {"status": status, "outputs": outputs, "steps": steps}


register_mode("workflow", run_workflow)
