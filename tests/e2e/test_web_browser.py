"""The web UI in a real headless Chromium (Debian's, driven by Playwright) against a real 3-cluster
federation on loopback: log in, open a project, preview and download a file, upload one (resuming
after an interruption), share, follow a running 3-cluster workflow to its end (each step on the
right cluster, the bytes moved matching the keepstores' counters), and a user who cannot see
another's private project. Screenshots are kept under test-artifacts/web/."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archipelago.cwl.tags import RUN, RUN_ID_ENV, STEP, new_run_id
from archipelago.keepstore.metrics import fetched_from_clusters
from archipelago.run.federation import init_federation
from archipelago.run.processes import ClusterProcess
from archipelago.run.resolver import local_resolver
from archipelago.sdk import ApiClient, Collection
from tests.support import browser as chromium
from tests.support.clusters import new_user
from tests.support.web import WebClient

pytestmark = pytest.mark.integration
if (why := chromium.missing()) is not None:
    pytest.skip(why, allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

TABLE = b"site,patients,effect\nsite-z1111,120,-4.6\nsite-z2222,118,-7.7\nsite-z3333,131,-4.9\n"
WAIT = 120_000  # ms a page may take to show what the test waits for (a workflow runs meanwhile)
expect.set_options(timeout=WAIT)


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Three clusters and the dataset resolver `archi federation up` writes beside them (started
    first, so that the clusters' first heartbeats reach it)."""
    directory = tmp_path_factory.mktemp("web-federation")
    members = init_federation(directory, 3)
    resolver = local_resolver(directory)
    assert resolver is not None
    resolver.start()
    processes: list[ClusterProcess] = []
    try:
        processes += [ClusterProcess(m.directory).start() for m in members]
        clients = {m.cluster_id: ApiClient(m.api_url, m.admin_token, insecure=True) for m in members}
        yield {**clients, "processes": dict(zip(clients, processes, strict=True)), "resolver": resolver}
    finally:
        for process in processes:
            process.stop()
        resolver.stop()


@pytest.fixture(scope="module")
def people(federation: dict[str, Any]) -> dict[str, ApiClient]:
    admin = federation["z1111"]
    return {"ana": new_user(admin, "ana"), "bob": new_user(admin, "bob")}


@pytest.fixture(scope="module")
def data(people: dict[str, ApiClient]) -> dict[str, Any]:
    """Ana's project with a collection to browse, and a private project of hers nobody is shown."""
    ana = people["ana"]
    project = ana.groups.create({"name": "Blood pressure trial", "group_class": "project"})
    collection = Collection(ana)
    collection.write("summary.csv", TABLE)
    collection.write("forest-plot.png", chromium.png(240, 120))
    collection.write("notes/README.txt", b"Effects are mmHg of systolic blood pressure, treated minus control.\n")
    record = collection.save_new("trial results", owner_uuid=project["uuid"], properties={"study": "bp-trial"})
    private = ana.groups.create({"name": "Ana's private drafts", "group_class": "project"})
    Collection(ana).save_new("draft analysis", owner_uuid=private["uuid"])
    return {"project": project, "collection": record, "private": private}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as playwright:
        launched = chromium.launch(playwright)
        yield launched
        launched.close()


def open_page(browser: Any, base: str) -> Page:
    context = browser.new_context(ignore_https_errors=True, base_url=base, viewport={"width": 1280, "height": 860},
                                  accept_downloads=True)
    context.set_default_timeout(WAIT)
    return context.new_page()


def log_in(page: Page, token: str) -> None:
    page.goto("/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Data across the federation")).to_be_visible()


def test_log_in_open_a_project_preview_and_download_a_file(browser: Any, federation: dict[str, Any],
                                                           people: dict[str, ApiClient], data: dict[str, Any]) -> None:
    page = open_page(browser, federation["z1111"].base)
    page.goto("/data")
    expect(page.get_by_label("API token")).to_be_visible()  # sent to log in first
    log_in(page, people["ana"].token)
    page.get_by_role("link", name="Blood pressure trial").click()
    expect(page.get_by_role("heading", name="Blood pressure trial")).to_be_visible()
    page.get_by_role("link", name="trial results").click()
    expect(page.get_by_role("heading", name="trial results")).to_be_visible()
    files = page.locator("table.files")
    expect(files).to_contain_text("summary.csv")
    expect(files).to_contain_text("Keep on z1111")
    expect(page.locator("dl.facts").first).to_contain_text(data["collection"]["portable_data_hash"])
    chromium.shot(page, "collection", docs="ui-data.png")

    page.get_by_role("link", name="summary.csv", exact=True).click()
    preview = page.locator("table.csv")
    expect(preview.locator("thead")).to_contain_text("patients")
    expect(preview.locator("tbody tr")).to_have_count(3)
    expect(preview).to_contain_text("site-z2222")
    chromium.shot(page, "file-preview")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download summary.csv").click()
    assert Path(download.value.path()).read_bytes() == TABLE
    assert download.value.suggested_filename == "summary.csv"

    page.goto(f"/collections/{data['collection']['uuid']}/files/forest-plot.png")
    image = page.get_by_role("img", name="Preview of forest-plot.png")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth") == 240
    page.goto(f"/collections/{data['collection']['uuid']}/files/notes/README.txt")
    expect(page.locator("pre.text")).to_contain_text("systolic blood pressure")


def test_upload_a_file_resuming_after_an_interruption(browser: Any, federation: dict[str, Any],
                                                      people: dict[str, ApiClient], data: dict[str, Any],
                                                      tmp_path: Path) -> None:
    page = open_page(browser, federation["z1111"].base)
    log_in(page, people["ana"].token)
    uuid = data["collection"]["uuid"]
    content = random.Random(21).randbytes(20 << 20)  # three pieces of 8 MiB at most
    source = tmp_path / "measurements.bin"
    source.write_bytes(content)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/blocks") else None)
    pieces = {"n": 0}

    def cut_the_second(route: Any) -> None:  # the network fails while the second piece goes up
        pieces["n"] += 1
        route.abort() if pieces["n"] >= 2 else route.continue_()

    page.route("**/blocks", cut_the_second)
    page.goto(f"/collections/{uuid}")
    page.get_by_label("Files to add").set_input_files(str(source))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-progress")).to_contain_text("interrupted")
    chromium.shot(page, "upload-interrupted")
    page.unroute("**/blocks")
    first_try = len(sent)
    page.get_by_label("Files to add").set_input_files(str(source))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("table.files")).to_contain_text("measurements.bin")  # the page reloads when done
    assert len(sent) - first_try == 2  # the first piece was not sent again
    stored = Collection(people["ana"], uuid)
    assert dict(stored.files())["measurements.bin"] == len(content)
    assert stored.read("measurements.bin") == content


def test_share_a_project_with_another_user(browser: Any, federation: dict[str, Any], people: dict[str, ApiClient],
                                           data: dict[str, Any]) -> None:
    bob = people["bob"].users.current()
    page = open_page(browser, federation["z1111"].base)
    log_in(page, people["ana"].token)
    page.goto(f"/projects/{data['project']['uuid']}")
    page.get_by_label("Share with").fill(bob["username"])
    page.get_by_label("who may").select_option("can_read")
    page.get_by_role("button", name="Share").click()
    expect(page.locator("#sharing table")).to_contain_text(bob["username"])
    chromium.shot(page, "shared")
    theirs = open_page(browser, federation["z1111"].base)
    log_in(theirs, people["bob"].token)
    shared = theirs.locator("section", has=theirs.get_by_role("heading", name="Shared with you", exact=True))
    shared.get_by_role("link", name="Blood pressure trial").click()
    theirs.get_by_role("link", name="trial results").click()
    expect(theirs.locator("table.files")).to_contain_text("summary.csv")


def test_a_user_cannot_see_another_users_private_project(browser: Any, federation: dict[str, Any],
                                                         people: dict[str, ApiClient], data: dict[str, Any]) -> None:
    page = open_page(browser, federation["z1111"].base)
    log_in(page, people["bob"].token)
    expect(page.locator("main")).not_to_contain_text("private drafts")
    page.goto("/search?q=draft")
    expect(page.locator("main")).not_to_contain_text("draft analysis")
    response = page.goto(f"/projects/{data['private']['uuid']}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("private drafts")
    chromium.shot(page, "private-project-refused")


# ---------------------------------------------------------------------------- a workflow across 3 clusters
EXAMPLE = chromium.ROOT / "examples" / "meta-analysis"


def cohort(site: str, rows: int, seed: int) -> bytes:
    """A trial cohort as examples/meta-analysis/extract.py reads it."""
    draw = random.Random(seed)
    lines = ["site,age,treatment,sbp_change"]
    for _ in range(rows):
        treated = draw.random() < 0.5
        lines.append(f"{site},{draw.randint(30, 85)},{int(treated)},{draw.gauss(-9 if treated else -3, 6):.2f}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def cohorts(federation: dict[str, Any], people: dict[str, ApiClient]) -> dict[str, dict[str, Any]]:
    """Each cluster's admin keeps a cohort that stays on its cluster and shares it with Ana."""
    ana = people["ana"].users.current()["uuid"]
    records = {}
    for n, cluster in enumerate(("z1111", "z2222", "z3333"), start=1):
        admin = federation[cluster]
        project = admin.groups.create({"name": f"cohort {cluster}", "group_class": "project", "residency": "cluster"})
        collection = Collection(admin)
        collection.write("cohort.csv", cohort(f"site-{cluster}", 900, n))
        records[cluster] = collection.save_new(f"trial cohort {cluster}", owner_uuid=project["uuid"])
        admin.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": ana,
                            "head_uuid": project["uuid"]})
    return records


@pytest.fixture(scope="module")
def job(cohorts: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("job") / "job.json"
    path.write_text(json.dumps({
        "cohorts": [{"class": "File", "location": f"keep:{r['portable_data_hash']}/cohort.csv"}
                    for r in cohorts.values()],
        "clusters": list(cohorts), "min_age": 50,
        "extract_script": {"class": "File", "path": str(EXAMPLE / "extract.py")},
        "merge_script": {"class": "File", "path": str(EXAMPLE / "merge.py")}}))
    return path


def containers_counted(client: ApiClient, steps: dict[str, Any]) -> dict[str, int]:
    """Bytes each step's container read of data held on another cluster, from its own log."""
    pairs: dict[str, int] = {}
    for request, step in steps.items():
        log = client.container_requests.get(request)["log_uuid"] if request[:5] == "z1111" else \
            client.request("GET", f"container_requests/{request}")["log_uuid"]
        text = Collection(client, log).read("crunch-run.txt").decode()
        for match in re.finditer(r"read (\d+) bytes of mounted data held by cluster (\w+)", text):
            edge = f"{match[2]}→{step['cluster']}"
            pairs[edge] = pairs.get(edge, 0) + int(match[1])
    return pairs


def counters(federation: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {cluster: fetched_from_clusters(process.keep_url) for cluster, process in federation["processes"].items()}


def test_follow_a_running_workflow_across_three_clusters_to_its_end(
        browser: Any, federation: dict[str, Any], people: dict[str, ApiClient], job: Path) -> None:
    ana = people["ana"]
    base = federation["z1111"].base
    run_id = new_run_id("z1111")
    before = counters(federation)
    env = {**os.environ, "ARCHI_API_HOST": base, "ARCHI_API_TOKEN": ana.token, "ARCHI_API_HOST_INSECURE": "1",
           RUN_ID_ENV: run_id}
    archi = Path(sys.executable).parent / "archi"
    running = subprocess.Popen([str(archi), "run", "--json", str(EXAMPLE / "meta-analysis.cwl"), str(job)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        watcher = WebClient(base)
        watcher.login(ana.token)
        for _ in range(1200):  # the run page exists once the first step is submitted
            if watcher.get(f"/runs/{run_id}").status == 200 or running.poll() is not None:
                break
            time.sleep(0.1)
        page = open_page(browser, base)
        page.add_init_script("window.__states = []; document.addEventListener('archi:run-state', "
                             "e => window.__states.push(e.detail.state));")
        log_in(page, ana.token)
        page.goto(f"/runs/{run_id}")  # the page is never reloaded from here on: what it shows comes live
        out, err = running.communicate(timeout=600)
    finally:
        if running.poll() is None:
            running.kill()
    assert running.returncode == 0, err[-3000:]
    report = json.loads(out)
    after = counters(federation)
    steps = {s["request"]: s for s in report["steps"]}
    assert sorted(s["cluster"] for s in steps.values()) == ["z1111", "z1111", "z2222", "z3333"]
    expect(page.locator("table.steps tbody tr")).to_have_count(4)
    expect(page.locator("table.steps td.state")).to_have_text(["succeeded"] * 4)
    expect(page.locator("#run-state")).to_have_text("succeeded")
    seen = page.evaluate("window.__states")
    assert seen and seen[0] != "succeeded", seen  # the page followed the run while it ran
    for request, step in steps.items():
        row = page.locator(f"#row-{request}")
        expect(row.locator("td").nth(1)).to_have_text(step["cluster"])
        expect(row.locator("td.state")).to_have_text("succeeded")
        assert request[:5] == step["cluster"]
        expect(page.locator(f"#node-{request}")).to_contain_text(f"{step['cluster']} · succeeded")
        assert page.locator(f"#node-{request} rect").evaluate("r => getComputedStyle(r).fill") == \
            page.locator(f"#row-{request} .cluster").evaluate("c => getComputedStyle(c).backgroundColor")
    chromium.shot(page, "run", docs="ui-run.png")

    shown = {row.get_attribute("data-pair"): int(row.locator("td[data-bytes]").get_attribute("data-bytes") or 0)
             for row in page.locator("#moved tr[data-pair]").all()}
    assert shown == containers_counted(ana, steps) and set(shown) == {  # as each container counted what it read
        "z1111→z2222", "z1111→z3333", "z2222→z1111", "z3333→z1111"}
    for remote in ("z2222", "z3333"):
        out = after[remote].get("z1111", 0) - before[remote].get("z1111", 0)
        assert shown[f"z1111→{remote}"] == out > 0, (remote, shown, out)  # the scripts, as the site's keepstore counted
        home = after["z1111"].get(remote, 0) - before["z1111"].get(remote, 0)
        assert 0 < shown[f"{remote}→z1111"] <= home  # the summary merge read; home also fetched the step's log
        assert after[remote].get("z2222" if remote == "z3333" else "z3333", 0) == 0  # the sites never met

    page.goto(f"/runs/{run_id}")  # its plan and report, kept at home by `archi run` in the terminal
    planned = page.locator("#plan-steps tbody tr")
    expect(planned).to_have_count(4)
    for n in range(4):  # each record planned where its cohort is, and run there
        cells = planned.nth(n).locator("td")
        expect(cells.nth(3)).to_have_text(cells.nth(1).inner_text())
    assert report["crossings"]
    for crossing in report["crossings"]:
        expect(page.locator(f"#plan-crossings tr[data-pair='{crossing['from']}→{crossing['to']}']")).to_be_visible()
    chromium.shot(page, "terminal-run-plan")

    page.goto("/movement")
    now = counters(federation)
    for source_to_target, n in {f"{s}→{t}": v for t, c in now.items() for s, v in c.items() if v}.items():
        expect(page.locator(f'#counters tr[data-pair="{source_to_target}"] td[data-bytes]')).to_have_attribute(
            "data-bytes", str(n))
    chromium.shot(page, "movement")

    remote = next(r for r, s in steps.items() if s["cluster"] == "z2222")
    page.goto(f"/runs/{run_id}/steps/{remote}")
    expect(page.locator("pre[data-log-file='crunch-run.txt']")).to_contain_text("read")  # fetched from z2222
    chromium.shot(page, "remote-step")
    page.locator("ul.io li", has_text="output:").get_by_role("link").click()  # a collection held on z2222
    expect(page.locator("table.files")).to_contain_text("cluster z2222")  # its blocks: read through z1111's keepstore
    expect(page.locator("dl.facts").nth(1)).to_contain_text("read through this cluster")


def test_sites_show_health_and_the_resolvers_view_and_resolve_an_identifier(
        browser: Any, federation: dict[str, Any], people: dict[str, ApiClient], data: dict[str, Any]) -> None:
    ana = people["ana"]
    published = {"identifier": "doi:10.5555/bp-trial.2026", "head_uuid": data["collection"]["uuid"], "published": True}
    ana.request("POST", "identifiers", body={"identifier": published})
    page = open_page(browser, federation["z1111"].base)
    log_in(page, ana.token)
    page.goto("/sites")
    rows = page.locator("main table tbody tr")
    expect(rows).to_have_count(3)
    for n, cluster in enumerate(("z1111", "z2222", "z3333")):
        expect(rows.nth(n).locator("td").first).to_have_text(cluster)
        expect(rows.nth(n).locator("td").nth(2)).to_contain_text("up")
    for _ in range(600):  # the clusters' heartbeats reach the resolver within its windows
        if page.locator("main table tbody td", has_text="live").count() == 3:
            break
        page.wait_for_timeout(200)
        page.reload()
    expect(page.locator("main table tbody td", has_text="live")).to_have_count(3)
    chromium.shot(page, "sites")
    page.get_by_label("Identifier", exact=True).fill("https://doi.org/10.5555/BP-TRIAL.2026")
    page.get_by_role("button", name="Resolve").click()
    for _ in range(600):  # the identifier reaches the resolver with z1111's next push
        if page.locator("#resolved-title + table").count():
            break
        page.wait_for_timeout(200)
        page.reload()
    holders = page.locator("section", has=page.locator("#resolved-title")).locator("tbody tr")
    expect(holders).to_have_count(1)
    expect(holders.first).to_contain_text("z1111")
    expect(holders.first).to_contain_text("live")
    holders.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="trial results")).to_be_visible()


def test_a_residency_refusal_is_shown_to_the_reader_and_listed_with_who_and_what(
        browser: Any, federation: dict[str, Any], people: dict[str, ApiClient],
        cohorts: dict[str, dict[str, Any]]) -> None:
    ana, held = people["ana"], cohorts["z2222"]["uuid"]
    page = open_page(browser, federation["z1111"].base)
    log_in(page, ana.token)
    response = page.goto(f"/collections/{held}")
    assert response is not None and response.status == 403
    expect(page.locator(".error .message")).to_contain_text("stays on cluster z2222")
    expect(page.locator("main")).not_to_contain_text("cohort.csv")
    chromium.shot(page, "residency-refused")
    site = open_page(browser, federation["z2222"].base)  # the site that refused, as its admin sees it
    log_in(site, federation["z2222"].token)
    site.goto("/movement")
    refused = site.locator("#refusals tbody tr", has_text=held)
    expect(refused.first).to_contain_text(ana.users.current()["uuid"])
    expect(refused.first).to_contain_text("via cluster z1111")
    chromium.shot(site, "refusals")


def test_a_submitted_run_shows_its_plan_beside_what_happened_and_runs_again(
        browser: Any, federation: dict[str, Any], people: dict[str, ApiClient], job: Path) -> None:
    ana = people["ana"]
    base = federation["z1111"].base
    env = {**os.environ, "ARCHI_API_HOST": base, "ARCHI_API_TOKEN": ana.token, "ARCHI_API_HOST_INSECURE": "1"}
    env.pop(RUN_ID_ENV, None)
    archi = Path(sys.executable).parent / "archi"
    command = [str(archi), "run", "--submit", "--no-wait", "--json", str(EXAMPLE / "meta-analysis.cwl"), str(job)]
    submitted = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    runner = ana.container_requests.get(json.loads(submitted.stdout)["run"])
    run_id = runner["properties"][RUN]
    page = open_page(browser, base)
    log_in(page, ana.token)
    page.goto(f"/runs/{run_id}")
    expect(page.locator(f"#row-{runner['uuid']}")).to_contain_text("runner")
    expect(page.locator("#run-state")).to_have_text("succeeded")  # when its runner has ended
    planned = page.locator("#plan-steps tbody tr")
    expect(planned).to_have_count(4)
    for n in range(4):  # each record of the scatter planned where its cohort is, and run there
        cells = planned.nth(n).locator("td")
        expect(cells.nth(3)).to_have_text(cells.nth(1).inner_text())
    expect(page.locator("#plan-crossings tr[data-pair='z1111→z2222']")).to_be_visible()
    chromium.shot(page, "submitted-run")
    page.get_by_role("button", name="Run again").click()
    page.wait_for_url(lambda url: "/runs/" in url and run_id not in url)
    again = page.url.rsplit("/", 1)[-1]
    assert again != run_id and again.startswith("z1111-run-")
    expect(page.locator("#run-state")).to_have_text("succeeded")
    rerun = [r for r in ana.container_requests.list([[f"properties.{RUN}", "=", again]])["items"]
             if (r.get("properties") or {}).get("type") == "archi-run"]
    assert len(rerun) == 1 and rerun[0]["command"] == runner["command"]


def test_a_notebook_next_to_a_dataset_starts_opens_and_stops(
        browser: Any, federation: dict[str, Any], people: dict[str, ApiClient], data: dict[str, Any]) -> None:
    ana = people["ana"]
    page = open_page(browser, federation["z1111"].base)
    log_in(page, ana.token)
    page.goto(f"/collections/{data['collection']['uuid']}")
    page.get_by_role("button", name="Start a notebook on z1111 with this collection at /data").click()
    row = page.locator("main table tbody tr").first
    expect(row).to_contain_text(data["collection"]["uuid"])

    def until(text: str) -> None:
        for _ in range(600):
            if text in row.locator("td.state").inner_text():
                return
            page.wait_for_timeout(250)
            page.reload()
        expect(row.locator("td.state")).to_contain_text(text)

    until("running")
    chromium.shot(page, "notebook-running")
    with page.expect_navigation(url=lambda url: "/proxy/lab" in url):
        row.get_by_role("button", name="Open").click()
    assert "token=" not in page.url  # handed over once, then a cookie for the notebook's path
    expect(page).to_have_title(re.compile("JupyterLab"))
    chromium.shot(page, "notebook-lab")
    page.goto("/notebooks")
    row.get_by_role("button", name="Stop").click()
    until("stopped")
    expect(row.get_by_role("link", name="its notebooks")).to_be_visible()
    chromium.shot(page, "notebook-stopped")


UNLABELLED = """() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea, button")]
  .filter(e => e.offsetParent !== null)
  .filter(e => !((e.labels && e.labels.length) || e.getAttribute("aria-label") || (e.tagName === "BUTTON" &&
                  e.textContent.trim())))
  .map(e => e.outerHTML)"""


# the lowest contrast ratio (WCAG) of any visible text on the page against its background
LOWEST_CONTRAST = """() => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 :
                                                  Math.pow((v + 0.055) / 1.055, 2.4); })
                                      .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = e => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
                                                             if (c.length === 3 || c[3] > 0) return c.slice(0, 3); }
                            return [255, 255, 255]; };
  let lowest = 21, where = "";
  for (const e of document.querySelectorAll("body *")) {
    const text = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!text || e.offsetParent === null || e.closest("svg")) continue;
    const a = lum(rgb(getComputedStyle(e).color)), b = lum(background(e));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < lowest) { lowest = ratio; where = e.outerHTML.slice(0, 80); }
  }
  return [lowest, where];
}"""


def test_every_control_is_labelled_text_contrasts_and_the_run_graph_works_from_the_keyboard(
        browser: Any, federation: dict[str, Any], people: dict[str, ApiClient], data: dict[str, Any]) -> None:
    page = open_page(browser, federation["z1111"].base)
    log_in(page, people["ana"].token)
    page.goto("/runs")
    run = page.locator("main table tbody a").first.get_attribute("href")
    assert run is not None
    for path in ("/data", f"/projects/{data['project']['uuid']}", f"/collections/{data['collection']['uuid']}",
                 "/search?q=trial", run, "/movement", "/notebooks", "/sites"):
        page.goto(path)
        assert page.evaluate(UNLABELLED) == [], path
        assert page.locator("main h1").count() == 1, path
        lowest, where = page.evaluate(LOWEST_CONTRAST)
        assert lowest >= 4.5, (path, lowest, where)  # WCAG AA for text
    page.goto(run)
    page.locator("a.skip").focus()  # the first stop: skip to the content
    for _ in range(60):  # then on through the page to the graph's first step
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('node')"):
            break
    name = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert name and " on z" in name
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text(name.split(" on ")[0])


def test_a_running_remote_steps_log_is_tailed_through_the_federation(
        browser: Any, federation: dict[str, Any], people: dict[str, ApiClient]) -> None:
    ana = people["ana"]
    run_id = new_run_id("z1111")
    # a long pause halfway: the page shows part of the log for 45 s, however loaded the machine
    script = "for i in 1 2 3 4; do echo line $i; done; sleep 45; for i in 5 6 7 8; do echo line $i; done"
    request = ana.request("POST", "container_requests", {"cluster_id": "z2222"}, {"container_request": {
        "name": "counting", "command": ["sh", "-c", script], "output_path": "/out", "cwd": "/out",
        "container_image": None, "state": "Committed", "priority": 500, "use_existing": False,
        "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 20}},
        "runtime_constraints": {"ram": 64 << 20, "vcpus": 1},
        "properties": {RUN: run_id, STEP: "counting"}}})
    page = open_page(browser, federation["z1111"].base)
    page.add_init_script("window.__logs = []; new MutationObserver(() => { const pre = document.querySelector("
                         "\"pre[data-log-file='stdout.txt']\"); if (pre) window.__logs.push(pre.textContent); })"
                         ".observe(document, {subtree: true, childList: true, characterData: true});")
    log_in(page, ana.token)
    page.goto(f"/runs/{run_id}/steps/{request['uuid']}")
    stdout = page.locator("pre[data-log-file='stdout.txt']")
    expect(stdout).to_contain_text("line 4")  # the first half, while the container pauses
    expect(stdout).to_contain_text("line 8")  # the page is never reloaded: the log grows in it
    expect(page.locator("[data-field='state']").first).to_have_text("succeeded")
    seen = page.evaluate("window.__logs")
    assert any("line" in text and "line 8" not in text for text in seen), seen  # part of it, while it ran
    chromium.shot(page, "log-tailed")
