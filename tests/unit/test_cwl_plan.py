"""The plan of a run (cwl/plan.py), made against three federated clusters in this process (their
real API apps over an in-process transport): where each step and record goes and why, what it
reads from where, and every reason to refuse the run, found together before anything is written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from archipelago.cwl.bounds import crossings
from archipelago.cwl.runner import Refused, Runner
from archipelago.sdk import ApiClient
from tests.support.asgi import AsgiTransport
from tests.support.backends import Site, federation

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "meta-analysis"
WORKFLOWS = Path(__file__).resolve().parents[1] / "integration" / "cwl"
PLANNED = Path(__file__).resolve().parent / "cwl"  # workflows that are only planned here


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Site]:
    return federation(tmp_path_factory.mktemp("plan"), ("z1111", "z2222", "z3333"))


def as_user(sites: dict[str, Site], name: str) -> tuple[ApiClient, str, Runner]:
    """A user of z1111: her client, her UUID, and a Runner that reaches every cluster in process."""
    caller = sites["z1111"].new_user(name)
    client = sites["z1111"].client(caller)
    apps = {cluster: site.apps["self"] for cluster, site in sites.items()}
    return client, caller.user_uuid, Runner(client, transport_for=lambda cluster: AsgiTransport(apps[cluster]))


def collection(site: Site, text: bytes, name: str, owner: str | None = None) -> dict[str, Any]:
    """A collection of one file (its block need not exist: nothing here reads it)."""
    locator = f"{hashlib.md5(text).hexdigest()}+{len(text)}"
    attrs = {"name": name, "manifest_text": f". {locator} 0:{len(text)}:cohort.csv\n",
             **({"owner_uuid": owner} if owner else {})}
    return site.local.create(site.admin, "collections", attrs, ensure_unique_name=True)


def restricted_cohort(site: Site, reader: str, rows: int) -> dict[str, Any]:
    """A cohort in a project that stays on its cluster, readable by `reader`."""
    project = site.local.create(site.admin, "groups", {"name": "cohort", "group_class": "project",
                                                       "residency": "cluster"}, ensure_unique_name=True)
    site.local.create(site.admin, "links", {"link_class": "permission", "name": "can_read", "tail_uuid": reader,
                                            "head_uuid": project["uuid"]})
    return collection(site, b"age,bp\n" + b"50,120\n" * rows, f"cohort {site.cluster_id}", project["uuid"])


def counts(sites: dict[str, Site]) -> dict[str, tuple[int, int]]:
    """Container requests and collections on each cluster."""
    from archipelago.backend.interface import ListParams

    def n(site: Site, kind: str) -> int:
        return int(site.local.list(site.admin, kind, ListParams(limit=0))["items_available"])

    return {c: (n(s, "container_requests"), n(s, "collections")) for c, s in sites.items()}


def test_the_meta_analysis_is_planned_next_to_each_cohort_with_the_bytes_that_may_cross(sites, tmp_path):
    _, me, runner = as_user(sites, "ana")
    cohorts = [restricted_cohort(sites[c], me, 10 * n) for n, c in enumerate(("z1111", "z2222", "z3333"), 1)]
    job = tmp_path / "job.json"
    job.write_text(json.dumps({
        "cohorts": [{"class": "File", "location": f"keep:{c['portable_data_hash']}/cohort.csv"} for c in cohorts],
        "clusters": ["z1111", "z2222", "z3333"], "min_age": 50,
        "extract_script": {"class": "File", "path": str(EXAMPLE / "extract.py")},
        "merge_script": {"class": "File", "path": str(EXAMPLE / "merge.py")}}))
    plan = runner.plan(EXAMPLE / "meta-analysis.cwl", job)
    assert plan.refusals() == []
    assert {k: (i.cluster, i.why) for k, i in plan.items.items()} == {
        "extract[0]": ("z1111", "ClusterTarget on step extract: $(inputs.where) = z1111"),
        "extract[1]": ("z2222", "ClusterTarget on step extract: $(inputs.where) = z2222"),
        "extract[2]": ("z3333", "ClusterTarget on step extract: $(inputs.where) = z3333"),
        "merge": ("z1111", "no ClusterTarget names a cluster: home")}
    assert plan.items["merge"].inputs_later and not plan.items["extract[1]"].inputs_later  # the summaries
    assert all(i.project is None and i.reuse == "may reuse" for i in plan.items.values())
    held = {c["portable_data_hash"]: runner.facts.holders(c["portable_data_hash"]) for c in cohorts}
    assert [sorted(h) for h in held.values()] == [["z1111"], ["z2222"], ["z3333"]]
    assert all(h.restricted for copies in held.values() for h in copies.values())
    scripts = (EXAMPLE / "extract.py").stat().st_size + (EXAMPLE / "merge.py").stat().st_size
    pairs = crossings(plan, runner.facts)
    assert {e: (c.at_least, c.at_most) for e, c in pairs.items()} == {  # the scripts go out, no cohort does
        "z1111→z2222": ((EXAMPLE / "extract.py").stat().st_size, scripts),
        "z1111→z3333": ((EXAMPLE / "extract.py").stat().st_size, scripts)}


def test_every_refusal_is_found_together_and_nothing_is_written(sites, tmp_path):
    _, me, runner = as_user(sites, "bea")
    theirs = sites["z2222"].local.create(sites["z2222"].admin, "groups", {"name": "theirs", "group_class": "project"},
                                         ensure_unique_name=True)
    shown = sites["z2222"].local.create(sites["z2222"].admin, "groups", {"name": "shown", "group_class": "project"},
                                        ensure_unique_name=True)
    sites["z2222"].local.create(sites["z2222"].admin, "links", {"link_class": "permission", "name": "can_read",
                                                                "tail_uuid": me, "head_uuid": shown["uuid"]})
    cohort = restricted_cohort(sites["z3333"], me, 5)
    (tmp_path / "lines.txt").write_text("a\nb\n")
    local = {"class": "File", "path": str(tmp_path / "lines.txt")}
    records = [(local, "z9999", ""),  # no such cluster
               (local, "z2222", theirs["uuid"]),  # a project she cannot see
               (local, "z2222", shown["uuid"]),  # one she may read but not write into
               ({"class": "File", "location": f"keep:{cohort['portable_data_hash']}/cohort.csv"}, "z1111", ""),
               (local, "z2222", "z1111-j7d0g-000000000000000"),  # a project of another cluster
               ({"class": "File", "location": "keep:0123456789abcdef0123456789abcdef+5/x"}, "z1111", ""),
               ({"class": "File", "path": str(tmp_path / "missing.txt")}, "z1111", "")]
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"files": [r[0] for r in records], "clusters": [r[1] for r in records],
                               "projects": [r[2] for r in records]}))
    before = counts(sites)
    with pytest.raises(Refused) as refused:
        runner.run(WORKFLOWS / "scatter-targets.cwl", job)
    problems = refused.value.plan.refusals()
    assert problems == [
        (None, f"input {tmp_path / 'missing.txt'}: no such file or directory"),
        ("count[0]", "unknown or invalid cluster id 'z9999' (this federation: z1111, z2222, z3333)"),
        ("count[1]", f"project {theirs['uuid']}: missing or not readable"),
        ("count[2]", f"project {shown['uuid']} on z2222 is not writable by you"),
        ("count[3]", f"collection {cohort['portable_data_hash']} (cohort z3333) stays on cluster z3333 "
                     "(residency): a step on z1111 would have to read it"),
        ("count[4]", "project z1111-j7d0g-000000000000000 is not on cluster z2222"),
        ("count[5]", "input collection 0123456789abcdef0123456789abcdef+5: missing or not readable")]
    assert "count[3]: collection" in str(refused.value)
    assert counts(sites) == before  # no request, no upload, anywhere


def test_a_collection_she_may_not_read_reads_as_one_that_does_not_exist(sites, tmp_path):
    """The plan says no more than a GET would: someone else's collection, on her cluster or another,
    is 'missing or not readable', word for word what a collection nobody has is."""
    _, _, runner = as_user(sites, "cid")
    private = collection(sites["z2222"], b"private\n", "private")["portable_data_hash"]
    mine_nowhere = hashlib.md5(b"nobody").hexdigest() + "+1"
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"files": [{"class": "File", "location": f"keep:{p}/x"} for p in (private, mine_nowhere)],
                               "clusters": ["z2222", "z2222"], "projects": ["", ""]}))
    plan = runner.plan(WORKFLOWS / "scatter-targets.cwl", job)
    said = {key: problem.replace(private, "PDH").replace(mine_nowhere, "PDH") for key, problem in plan.refusals()}
    assert said == {"count[0]": "input collection PDH: missing or not readable",
                    "count[1]": "input collection PDH: missing or not readable"}


def test_records_that_come_from_earlier_steps_are_decided_at_run_time(sites, tmp_path):
    _, _, runner = as_user(sites, "dan")
    (tmp_path / "in.txt").write_text("x\n")
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"infile": {"class": "File", "path": str(tmp_path / "in.txt")}}))
    plan = runner.plan(PLANNED / "fan-out.cwl", job)
    assert plan.refusals() == []
    split, count = plan.items["split"], plan.items["count[*]"]
    assert (split.cluster, split.inputs_later) == ("z1111", False)
    assert count.cluster is None and count.records_later  # which cluster depends on what split makes
    assert count.why == "ClusterTarget on step count: $(inputs.infile.basename)"


def test_a_step_target_comes_before_the_tools_own_and_the_workflows(sites, tmp_path):
    _, _, runner = as_user(sites, "eve")
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"where": "z3333"}))
    plan = runner.plan(PLANNED / "nested-targets.cwl", job)
    assert {k: (i.cluster, i.why) for k, i in plan.items.items()} == {
        "by_step": ("z3333", "ClusterTarget on step by_step: $(inputs.where) = z3333"),
        "by_tool": ("z1111", "ClusterTarget on tool hinted.cwl: z1111"),
        "by_workflow": ("z2222", "ClusterTarget on workflow nested-targets.cwl: z2222"),
        "inner/deep": ("z3333", "ClusterTarget on step inner: $(inputs.where) = z3333")}
