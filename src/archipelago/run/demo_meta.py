"""The headline scene of `make demo`: a meta-analysis across three clusters (examples/meta-analysis).

Each cluster's admin keeps one cohort (a table of a trial's patients) in a project that stays on
its cluster, and shares it with an analyst of z1111. The analyst runs one CWL workflow with
`archi run`: `extract` runs next to each cohort (arv:ClusterTarget), `merge` at home. The
keepstores' counters show what crossed each boundary: the scripts going out, the summaries coming
home, and none of the cohorts' bytes.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cwl.runner import Runner
from ..formats.manifest import parse
from ..keepstore.metrics import fetched_from_clusters
from ..sdk.client import ApiClient
from ..sdk.collection import Collection
from .federation import FederationMember

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "meta-analysis"
COHORT_ROWS = 40_000
MIN_AGE = 50


@dataclass
class MetaReport:
    status: str
    table: str
    pooled: dict[str, float]
    steps: dict[str, str]  # step -> cluster it ran on
    crossed: dict[str, int]  # "from→to" -> bytes
    cohort_bytes: int  # the size of the smallest cohort
    expected_bytes: int  # what had to cross: the scripts going out, the summaries coming home
    plot_bytes: int
    seconds: float
    plot_path: str | None = None  # where the forest plot was written on this machine
    failures: list[str] = field(default_factory=list)  # why it failed, if it did: the steps' own words
    plan: str = ""  # the plan archi run printed before it started (cwl/render.py)
    moved: str = ""  # the bytes the plan allowed between each pair of clusters, beside what moved
    more_than_planned: list[str] = field(default_factory=list)  # a bug if not empty
    placed: dict[str, list[str | None]] = field(default_factory=dict)  # step and record -> [planned, ran on]

    @property
    def cohort_bytes_crossed(self) -> int:
        return max(0, sum(self.crossed.values()) - self.expected_bytes)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "cohort_bytes_crossed": self.cohort_bytes_crossed}

    def text(self) -> str:
        crossed = ", ".join(f"{edge} {n / 1e3:.1f} kB" for edge, n in sorted(self.crossed.items())) or "nothing"
        where = ", ".join(f"{step} on {cluster}" for step, cluster in sorted(self.steps.items()))
        pooled = self.pooled
        return (
            (f"{self.plan}\n" if self.plan else "")
            + f"meta-analysis  one workflow (archi run): {where} ({self.seconds:.1f} s, {self.status})\n"
            + "\n".join(f"               {line}" for line in self.table.strip().splitlines()) + "\n"
            f"pooled effect  {pooled['effect']:.2f} mmHg (95% CI {pooled['ci_low']:.2f} to {pooled['ci_high']:.2f})\n"
            + (f"forest plot    {self.plot_path} ({self.plot_bytes / 1e3:.0f} kB PNG: open it to see each site's "
               "estimate and the pooled one)\n" if self.plot_path
               else f"forest plot    {self.plot_bytes / 1e3:.0f} kB (PNG)\n")
            + f"crossed        {crossed} (scripts out, summaries home: {self.expected_bytes / 1e3:.1f} kB "
            "expected; "
            f"each cohort is {self.cohort_bytes / 1e6:.1f} MB)\n"
            f"cohort bytes that left their cluster: {self.cohort_bytes_crossed}"
            + (f"\n{self.moved}" if self.moved else "")
        ) + "".join(f"\nfailed         {failure}" for failure in self.failures)


def _generate(site: str, seed: int) -> bytes:
    spec = importlib.util.spec_from_file_location("meta_generate", EXAMPLE / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.cohort(site, seed, COHORT_ROWS)
    header = ",".join(rows[0])
    return (header + "\n" + "".join(",".join(str(v) for v in row.values()) + "\n" for row in rows)).encode()


def _blocks(client: ApiClient, pdh: str) -> int:
    """Bytes of a collection's distinct blocks (what reading all of it fetches)."""
    text = client.collections.get(pdh)["manifest_text"]
    sizes = {locator[:32]: int(locator.split("+")[1]) for stream in parse(text).streams for locator in stream.locators}
    return sum(sizes.values())


def run_meta_analysis(members: list[FederationMember], keep_urls: dict[str, str], scratch: Path,
                      results: Path | None = None) -> MetaReport:
    """The workflow across the federation; with `results`, its plot, table and JSON are written there."""
    import time

    admins = {m.cluster_id: ApiClient(m.api_url, m.admin_token, insecure=True) for m in members}
    home_id = members[0].cluster_id
    analyst = _analyst(admins[home_id])
    analyst_uuid = analyst.users.current()["uuid"]
    cohorts, sizes = [], []
    for n, (cid, admin) in enumerate(admins.items(), start=1):
        project = admin.groups.create({"name": f"trial cohort {cid}", "group_class": "project",
                                       "residency": "cluster"}, ensure_unique_name=True)
        data = _generate(f"site-{cid}", n)
        cohort = Collection(admin)
        cohort.write("cohort.csv", data)
        record = cohort.save_new(f"trial cohort {cid}", owner_uuid=project["uuid"])
        admin.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": analyst_uuid,
                            "head_uuid": project["uuid"]})
        cohorts.append({"class": "File", "location": f"keep:{record['portable_data_hash']}/cohort.csv"})
        sizes.append(len(data))
    job = {"cohorts": cohorts, "clusters": list(admins), "min_age": MIN_AGE,
           "extract_script": {"class": "File", "path": str(EXAMPLE / "extract.py")},
           "merge_script": {"class": "File", "path": str(EXAMPLE / "merge.py")}}
    job_path = scratch / "meta-analysis-job.json"
    job_path.write_text(json.dumps(job))
    before = {cid: fetched_from_clusters(url) for cid, url in keep_urls.items()}
    logging.getLogger("cwltool").setLevel(logging.WARNING)  # the report says what happened
    logging.getLogger("archipelago.cwl").setLevel(logging.WARNING)
    started = time.perf_counter()
    planned: list[str] = []  # the plan as archi run prints it before it starts
    runner = Runner(analyst, on_plan=lambda r: planned.append(r.plan_text()))
    outputs, status = runner.run(EXAMPLE / "meta-analysis.cwl", job_path)
    seconds = time.perf_counter() - started
    after = {cid: fetched_from_clusters(url) for cid, url in keep_urls.items()}
    crossed = {f"{source}→{cid}": n - before[cid].get(source, 0)
               for cid, counters in after.items() for source, n in counters.items()
               if n - before[cid].get(source, 0)}
    steps = {name: step.cluster for name, step in runner.steps.items()}
    expected = _expected_crossings(analyst, runner, home_id)
    table, pooled, plot, plot_path = "", {"effect": 0.0, "ci_low": 0.0, "ci_high": 0.0}, 0, None
    if status == "success":
        table = _read(analyst, outputs["table"]).decode()
        pooled = json.loads(_read(analyst, outputs["result"]))["pooled"]
        picture = _read(analyst, outputs["plot"])
        plot = len(picture)
        if results is not None:
            results.mkdir(parents=True, exist_ok=True)
            (results / "forest-plot.png").write_bytes(picture)
            (results / "meta-analysis.tsv").write_text(table)
            (results / "meta-analysis.json").write_bytes(_read(analyst, outputs["result"]))
            plot_path = str((results / "forest-plot.png").resolve())
    failures = [] if status == "success" else [*runner.failures, *_failed_at_home(analyst)]
    return MetaReport(status, table, pooled, steps, crossed, min(sizes), expected, plot, seconds, plot_path,
                      failures, "".join(planned), runner.moved_text(), runner.exceeded,
                      {k: [i.cluster, i.ran_on] for k, i in runner.plan_.items.items()} if runner.plan_ else {})


def _failed_at_home(client: ApiClient) -> list[str]:
    """The analyst's steps at home that exited non-zero, each with the end of its stderr."""
    failed = []
    for request in client.container_requests.list(limit=100)["items"]:
        container = client.containers.get(request["container_uuid"]) if request.get("container_uuid") else {}
        if container.get("exit_code") not in (None, 0) and request.get("log_uuid"):
            names = {path for path, _ in Collection(client, request["log_uuid"]).files()}
            text = Collection(client, request["log_uuid"]).read("stderr.txt").decode(errors="replace") \
                if "stderr.txt" in names else ""
            tail = " / ".join(line.split(" ", 1)[-1] for line in text.strip().splitlines()[-2:])
            failed.append(f"{request['name']}: exit code {container['exit_code']}" + (f": {tail}" if tail else ""))
    return failed


def _expected_crossings(client: ApiClient, runner: Runner, home: str) -> int:
    """The scripts' block(s) fetched by each other cluster that ran a step, and each remote step's
    summary fetched home (a step's count of what it read comes with its container: no log is read)."""
    expected = 0
    remote_clusters = {step.cluster for step in runner.steps.values() if step.cluster != home}
    if runner.inputs_pdh:
        expected += _blocks(client, runner.inputs_pdh) * len(remote_clusters)
    for step in runner.steps.values():
        if step.cluster != home and step.output_pdh:
            expected += _blocks(client, step.output_pdh)
    return expected


def _read(client: ApiClient, output: dict[str, Any]) -> bytes:
    pdh, _, name = str(output["location"])[len("keep:"):].partition("/")
    return Collection(client, pdh).read(name)


def _analyst(admin: ApiClient) -> ApiClient:
    user = admin.users.create({"email": "analyst@example.org", "username": "analyst", "first_name": "Ana"})
    row = admin.api_client_authorizations.create({"owner_uuid": user["uuid"]})
    return ApiClient(admin.base, f"v2/{row['uuid']}/{row['api_token']}", insecure=True)
