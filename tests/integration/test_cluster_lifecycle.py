"""`archi cluster up` stops cleanly and at once on SIGTERM, even with clients' keep-alive
connections open to its API and keepstore (every teardown in this suite relies on it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import urllib3

from archipelago.run.cluster import init_cluster, serve_cluster
from archipelago.run.processes import ClusterProcess

pytestmark = pytest.mark.integration
ARCHI = Path(sys.executable).parent / "archi"


def test_sigterm_stops_the_cluster_cleanly_with_connections_open(tmp_path):
    init_cluster(tmp_path, "z1111")
    cluster = ClusterProcess(tmp_path).start()
    assert cluster.process is not None
    http = urllib3.PoolManager(cert_reqs="CERT_NONE")
    auth = {"Authorization": f"Bearer {cluster.admin_token}"}
    for _ in range(3):  # pooled: the connections stay open after each answer
        assert http.request("GET", cluster.api_url + "/arvados/v1/users/current", headers=auth).status == 200
        assert http.request("GET", cluster.keep_url + "/index", headers=auth).status in (200, 403)
    started = time.monotonic()
    cluster.process.send_signal(signal.SIGTERM)
    code = cluster.process.wait(timeout=60)  # a bound that fails the test if it hangs, not a benchmark
    print(f"stopped {time.monotonic() - started:.2f} s after SIGTERM")
    assert code == 0
    assert "Traceback" not in (tmp_path / "cluster.log").read_text()


def test_a_stop_while_starting_closes_the_api_it_had_opened(tmp_path):
    """SIGTERM after the API is up but before the dispatcher is: the API is stopped as after a
    start (its lifespan ended, its port closed), not left to the loop's end to cancel."""
    init = init_cluster(tmp_path, "z1111")
    host, port = init.config.api.host, init.config.api.port
    steps: list[str] = []

    def progress(step: str) -> None:
        steps.append(step)
        if step.startswith("API listening"):
            os.kill(os.getpid(), signal.SIGTERM)  # serve_cluster's own handler takes it

    async def main() -> None:
        await serve_cluster(init.config, init.config_path, progress=progress)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, port), timeout=2).close()

    asyncio.run(main())
    assert steps[-1] == "stopped before it was up", steps


def _first_json(stream) -> object:
    """The first JSON document a process prints (it may span lines)."""
    text = ""
    while True:
        line = stream.readline()
        assert line, f"the process ended before printing JSON: {text!r}"
        text += line
        with contextlib.suppress(json.JSONDecodeError):
            return json.loads(text)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _members(directory: Path) -> dict[str, int]:
    """The `archi cluster up` processes of a federation directory: cluster id -> pid."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                if b"up" in argv and any(a.startswith(str(directory).encode() + b"/") for a in argv):
                    found[Path(argv[-2].decode() or argv[-1].decode()).name] = int(proc.name)
    return found


def test_a_federation_keeps_its_live_members_and_sigterm_stops_them_all(tmp_path):
    federation = subprocess.Popen([str(ARCHI), "federation", "up", str(tmp_path), "--clusters", "2", "--json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        members = _first_json(federation.stdout)  # printed once every member serves
        pids = _members(tmp_path)
        assert set(pids) == {"z1111", "z2222"}, pids
        os.kill(pids["z2222"], signal.SIGKILL)  # one member dies
        time.sleep(2)
        assert federation.poll() is None  # the federation goes on
        http = urllib3.PoolManager(cert_reqs="CERT_NONE")
        assert http.request("GET", members[0]["api_url"] + "/_health/ping").status == 200
        # each cluster's web UI and the line that, pasted into a shell, is all `archi` needs to use it
        assert members[0]["web_url"] == members[0]["api_url"] + "/"
        assert http.request("GET", members[0]["web_url"], redirect=False).headers["Location"].startswith("/login")
        words = shlex.split(members[0]["export"])
        env = {**os.environ, **dict(w.split("=", 1) for w in words[1:]), "HOME": str(tmp_path)}
        listed = subprocess.run([str(ARCHI), "collection", "list", "--json"], capture_output=True, text=True, env=env,
                                timeout=60)
        assert words[0] == "export" and listed.returncode == 0, listed.stderr
        federation.send_signal(signal.SIGTERM)
        assert federation.wait(timeout=30) == 0
        assert not _alive(pids["z1111"])  # its children went with it
        assert "cluster z2222 stopped" in federation.stderr.read()
    finally:
        if federation.poll() is None:
            federation.kill()
        for pid in _members(tmp_path).values():
            os.kill(pid, signal.SIGKILL)


def test_cluster_up_reports_itself_as_json(tmp_path):
    init_cluster(tmp_path, "z1111")
    up = subprocess.Popen([str(ARCHI), "cluster", "up", str(tmp_path), "--json"], stdout=subprocess.PIPE, text=True)
    try:
        info = _first_json(up.stdout)
        assert info["cluster_id"] == "z1111" and info["api_url"].startswith("https://127.0.0.1:")
        assert info["admin_token"].startswith("v2/z1111-gj3su-")
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=10)


@pytest.mark.skipif(not Path("/usr/bin/bwrap").exists(), reason="bubblewrap is not installed")
def test_a_cluster_run_as_a_child_process_takes_its_running_containers_with_it(tmp_path):
    from archipelago.sdk import ApiClient
    from tests.support.clusters import new_user
    from tests.support.compute import submit, wait_container

    init_cluster(tmp_path / "c", "z1111")
    process = ClusterProcess(tmp_path / "c").start()
    try:
        admin = ApiClient(process.api_url, process.admin_token or "", insecure=True)
        alice = new_user(admin, "alice")
        request = submit(alice, ["sleep", "300"])
        deadline = time.monotonic() + 60
        while not (container := alice.container_requests.get(request["uuid"])["container_uuid"]):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        wait_container(alice, container, ("Running",), timeout=60)
        executors = [p for p in Path("/proc").glob("[0-9]*/cmdline") if container.encode() in _read(p)]
        assert executors, "no process of the container was found"
    finally:
        process.stop()
    assert not [p for p in Path("/proc").glob("[0-9]*/cmdline") if container.encode() in _read(p)]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
