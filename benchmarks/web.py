"""The web UI's first paint and live updates, in a real headless Chromium (Debian's, driven by
Playwright), against a real cluster on loopback.

Judged by:  first paint of the data page             (target < 1 s)
            first paint of a run page with 100 steps  (target < 1 s)
            a live update of that page: the state of 100 steps applied in the browser (target: well
            under a frame budget of 16 ms at the median, so that updates stay smooth)

One cluster (`archi cluster up` in a child process). A user holds a project of 30 collections; a run
of 100 steps (container requests carrying one run id, as `archi run` makes them, each a `true`
command) is committed and the run page is opened while the dispatcher works through them: every
container that starts or ends is a change the page hears through its EventSource. First paint is
Chromium's own `first-contentful-paint` entry (navigation start to the first text drawn).

    .venv/bin/python benchmarks/web.py [--steps 100] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from archipelago.cwl.tags import RUN, STEP, WORKFLOW, new_run_id
from archipelago.run.cluster import init_cluster
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient, Collection

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# timestamps each state event as it arrives, and how long the page took to apply it (run.js ends its
# work on an event with `archi:run-state`)
PROBE = """
window.__updates = [];
const Native = window.EventSource;
window.EventSource = function (url) {
  const source = new Native(url);
  source.addEventListener("state", () => { window.__arrived = performance.now(); });
  return source;
};
document.addEventListener("archi:run-state", (e) => {
  window.__updates.push({ms: performance.now() - window.__arrived, state: e.detail.state,
                         running: e.detail.steps.filter(s => s.state === "running").length});
});
"""


def first_paint(page: Any, path: str) -> tuple[float, float]:
    """(first-contentful-paint, server response) in seconds, for a fresh load of `path`."""
    page.goto(path)
    paint = None
    for _ in range(300):  # Chromium records the entry just after the paint
        paint = page.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime")
        if paint is not None:
            break
        page.wait_for_timeout(20)
    assert paint is not None, f"no first paint recorded for {path}"

    response = page.evaluate("performance.getEntriesByType('navigation')[0].responseEnd")
    return paint / 1000, response / 1000


def user(admin: ApiClient) -> ApiClient:
    record = admin.users.create({"email": "bench@example.org", "username": "bench", "first_name": "Bench"})
    token = admin.api_client_authorizations.create({"owner_uuid": record["uuid"]})
    return ApiClient(admin.base, f"v2/{token['uuid']}/{token['api_token']}", insecure=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch:
        init_cluster(Path(scratch) / "z1111", "z1111")
        cluster = ClusterProcess(Path(scratch) / "z1111").start()
        try:
            analyst = user(ApiClient(cluster.api_url, cluster.admin_token, insecure=True))
            project = analyst.groups.create({"name": "benchmark project", "group_class": "project"})
            for n in range(30):
                collection = Collection(analyst)
                collection.write(f"part-{n}.csv", b"a,b\n" * (n + 1))
                collection.save_new(f"collection {n:02d}", owner_uuid=project["uuid"])
            data = Collection(analyst)
            data.write("input.txt", b"input\n")
            pdh = data.save_new("input")["portable_data_hash"]
            run_id = new_run_id("z1111")
            for n in range(args.steps):
                analyst.container_requests.create({
                    "name": f"step {n}", "command": ["true", str(n)], "output_path": "/out", "cwd": "/out",
                    "container_image": None, "state": "Committed", "priority": 500,
                    "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 20},
                               "/in": {"kind": "collection", "portable_data_hash": pdh}},
                    "runtime_constraints": {"ram": 64 << 20, "vcpus": 1},
                    "properties": {RUN: run_id, STEP: f"step_{n:03d}", WORKFLOW: "benchmark.cwl"}})
            results = measure(sync_playwright, cluster.api_url, analyst.token, run_id, args.steps)
        finally:
            cluster.stop()
    report(results, args.json)


def measure(sync_playwright: Any, base: str, token: str, run_id: str, steps: int) -> dict[str, Any]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(ignore_https_errors=True, base_url=base, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/data")
        data_cold = first_paint(context.new_page(), "/data")
        data_warm = first_paint(context.new_page(), "/data")
        live = context.new_page()
        live.add_init_script(PROBE)
        run_paint = first_paint(live, f"/runs/{run_id}")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = live.locator("table.steps td.state", has_text="succeeded").count()
            if done == steps:
                break
            live.wait_for_timeout(500)
        updates = live.evaluate("window.__updates")
        finished_paint = first_paint(context.new_page(), f"/runs/{run_id}")
        browser.close()
    applied = sorted(u["ms"] for u in updates)
    return {"data_page_first_paint_s": data_cold[0], "data_page_first_paint_warm_s": data_warm[0],
            "data_page_response_s": data_cold[1], "run_page_steps": steps, "run_page_first_paint_s": run_paint[0],
            "run_page_response_s": run_paint[1], "finished_run_page_first_paint_s": finished_paint[0],
            "live_updates": len(applied), "steps_succeeded": done,
            "update_apply_median_ms": statistics.median(applied) if applied else None,
            "update_apply_max_ms": max(applied) if applied else None}


def report(results: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(results, indent=2))
        return
    target = 1.0
    print(f"data page       first paint {results['data_page_first_paint_s'] * 1000:6.0f} ms "
          f"(warm {results['data_page_first_paint_warm_s'] * 1000:.0f} ms; server answered at "
          f"{results['data_page_response_s'] * 1000:.0f} ms)   target < {target * 1000:.0f} ms: "
          f"ratio {results['data_page_first_paint_s'] / target:.2f}")
    steps = results["run_page_steps"]
    print(f"run page ({steps} steps, running)  first paint {results['run_page_first_paint_s'] * 1000:6.0f} ms "
          f"(server answered at {results['run_page_response_s'] * 1000:.0f} ms)   target < {target * 1000:.0f} ms: "
          f"ratio {results['run_page_first_paint_s'] / target:.2f}")
    print(f"run page ({results['run_page_steps']} steps, finished) first paint "
          f"{results['finished_run_page_first_paint_s'] * 1000:6.0f} ms")
    if results["live_updates"]:
        print(f"live updates    {results['live_updates']} state events while {results['steps_succeeded']} steps ran; "
              f"applied in {results['update_apply_median_ms']:.1f} ms (median), "
              f"{results['update_apply_max_ms']:.1f} ms (max): a frame is 16 ms")


if __name__ == "__main__":
    main()
