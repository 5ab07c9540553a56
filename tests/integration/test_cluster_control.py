"""`archi cluster up` as a newcomer meets it: a second `up` of a running directory, or one whose port
someone holds, fails at once naming who is in the way; SIGTERM and SIGINT stop a cluster that is
still starting; `up --detach`, `status` and `stop`; the `export` line it prints works as pasted; and
`archi get` does not overwrite files without -f."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from archipelago.config import dump_config, load_config
from archipelago.files import write_private
from archipelago.run.cluster import CONFIG_NAME, init_cluster
from archipelago.run.processes import ClusterProcess

pytestmark = pytest.mark.integration
ARCHI = [sys.executable, "-m", "archipelago"]
BOUND = 60  # seconds: fails the test if the command hangs (a fresh interpreter under load may take 5)


def archi(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*ARCHI, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_a_second_up_of_a_running_cluster_fails_at_once_naming_its_pid(tmp_path: Path) -> None:
    init_cluster(tmp_path, "z1111")
    with ClusterProcess(tmp_path) as first:
        second = archi("cluster", "up", str(tmp_path), timeout=BOUND)
        assert second.returncode == 1, second.stderr
        assert f"already up (pid {first.process.pid})" in second.stderr
        assert "archi cluster stop" in second.stderr and "Traceback" not in second.stderr
        as_json = archi("cluster", "up", str(tmp_path), "--json", timeout=BOUND)
        assert as_json.returncode == 1 and f"pid {first.process.pid}" in json.loads(as_json.stdout)["error"]
        assert first.process.poll() is None  # the running one is untouched


@pytest.mark.parametrize("which", ["api", "keepstore"])
def test_a_port_someone_holds_is_named_with_its_holder(tmp_path: Path, which: str) -> None:
    config = init_cluster(tmp_path, "z1111").config
    port = config.api.port if which == "api" else config.keepstore.port
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen(1)
        result = archi("cluster", "up", str(tmp_path), timeout=BOUND)
    assert result.returncode == 1, result.stderr
    assert f"port {port}" in result.stderr and f"pid {os.getpid()}" in result.stderr
    assert f"{which}.listen" in result.stderr and "Traceback" not in result.stderr


def test_a_keepstore_of_its_own_names_the_holder_of_its_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = archi("keepstore", "--data-dir", str(tmp_path), "--token", "t" * 32, "--listen", f"127.0.0.1:{port}",
                       timeout=BOUND)
    assert result.returncode == 1 and f"port {port}" in result.stderr and f"pid {os.getpid()}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_a_cluster_that_is_still_starting(tmp_path: Path, sig: signal.Signals) -> None:
    """Its database accepts the connection and never answers: the start cannot finish by itself."""
    path = init_cluster(tmp_path, "z1111").config_path
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        config = load_config(path)
        config.database_url = f"postgresql://archi@127.0.0.1:{silent.getsockname()[1]}/archi"
        write_private(path, dump_config(config))
        process = subprocess.Popen([*ARCHI, "cluster", "up", str(tmp_path)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        try:
            said = _wait_for_line(process, "opening the database", 60)  # the step that cannot finish
            assert said, "cluster up did not say it was opening the database"
            time.sleep(0.5)
            assert process.poll() is None
            process.send_signal(sig)
            code = process.wait(timeout=BOUND)
        finally:
            process.kill()
            process.wait()
    assert code == 0
    assert "stopped before it was up" in os.read(process.stderr.fileno(), 65536).decode()


def _wait_for_line(process: subprocess.Popen, text: str, seconds: float) -> bool:
    """Whether the process says `text` on stderr within `seconds` (a bound: it fails, not hangs)."""
    assert process.stderr is not None
    deadline = time.monotonic() + seconds
    seen = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stderr], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(process.stderr.fileno(), 4096).decode(errors="replace")
        if not chunk:
            break
        seen += chunk
        if text in seen:
            return True
    return False


def _alive(pid: int) -> bool:
    """Running (a zombie nobody has reaped yet is not: the detached cluster's parent is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _env(export_line: str, home: Path) -> dict[str, str]:
    words = shlex.split(export_line)
    assert words[0] == "export"
    return {**dict(word.split("=", 1) for word in words[1:]), "HOME": str(home)}


@pytest.fixture
def detached(tmp_path: Path) -> Iterator[tuple[Path, dict]]:
    """A cluster started with `up --detach` (stopped at the end whatever happens)."""
    directory = tmp_path / "cluster"
    init_cluster(directory, "z1111")
    started = archi("cluster", "up", str(directory), "--detach", "--json", timeout=120)
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    try:
        yield directory, info
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(info["pid"], signal.SIGKILL)


def test_detach_status_export_and_stop(detached: tuple[Path, dict], tmp_path: Path) -> None:
    directory, info = detached
    assert re.fullmatch(r"export ARCHI_API_HOST=https://127\.0\.0\.1:\d+ ARCHI_API_TOKEN=v2/\S+ "
                        r"ARCHI_API_HOST_INSECURE=1", info["export"])
    status = archi("cluster", "status", str(directory), "--json")
    assert status.returncode == 0, status.stderr
    found = json.loads(status.stdout)
    assert found["up"] and found["healthy"] and found["pid"] == info["pid"] and found["export"] == info["export"]
    human = archi("cluster", "status", str(directory))
    assert f"up (pid {info['pid']}), answering" in human.stdout and info["export"] in human.stdout
    assert f"web UI       {info['web_url']}" in human.stdout
    # the export line, pasted into a shell, is all `archi` needs
    listed = archi("collection", "list", "--json", env=_env(info["export"], tmp_path))
    assert listed.returncode == 0, listed.stderr
    stopped = archi("cluster", "stop", str(directory), "--json", timeout=30 + BOUND)
    assert stopped.returncode == 0 and json.loads(stopped.stdout) == {"cluster_id": "z1111", "stopped": True,
                                                                      "pid": info["pid"]}
    assert not _alive(info["pid"])
    after = archi("cluster", "status", str(directory), "--json")
    assert after.returncode == 1 and json.loads(after.stdout)["up"] is False
    assert archi("cluster", "stop", str(directory)).returncode == 0  # nothing to stop: said, not an error


def test_the_web_ui_is_printed_and_is_what_arvados_clients_are_told(detached: tuple[Path, dict]) -> None:
    """`cluster up` prints the web UI's address; `Services.Workbench2.ExternalURL` names it, with the
    trailing slash arvados-cwl-runner joins `processes/UUID` and `collections/PDH` to, and both answer."""
    import arvados
    import urllib3

    _, info = detached
    assert info["web_url"] == info["api_url"] + "/"
    http = urllib3.PoolManager(cert_reqs="CERT_NONE")
    page = http.request("GET", info["web_url"], redirect=True)
    assert page.status == 200 and b"<h1" in page.data and b"token" in page.data.lower()  # the log-in page
    host = info["api_url"].removeprefix("https://")
    client = arvados.api("v1", host=host, token=info["admin_token"], insecure=True, num_retries=0)
    workbench2 = client.config()["Services"]["Workbench2"]["ExternalURL"]
    assert workbench2 == info["web_url"]
    for path in ("processes/z1111-xvhdz-000000000000000", "collections/z1111-4zz18-000000000000000"):
        answer = http.request("GET", workbench2 + path, redirect=False)
        assert answer.status == 303 and answer.headers["Location"].startswith("/login?next="), path


def test_get_does_not_overwrite_without_force(detached: tuple[Path, dict], tmp_path: Path) -> None:
    _, info = detached
    env = _env(info["export"], tmp_path)
    source = tmp_path / "results"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha\n")
    (source / "sub" / "b.txt").write_text("beta\n")
    uuid = json.loads(archi("put", str(source), "--json", env=env).stdout)["uuid"]
    dest = tmp_path / "copy"
    assert archi("get", uuid, str(dest), env=env).returncode == 0
    (dest / "a.txt").write_text("my own notes\n")
    refused = archi("get", uuid, str(dest), env=env)
    assert refused.returncode == 2 and str(dest / "a.txt") in refused.stderr and "--force" in refused.stderr
    assert (dest / "a.txt").read_text() == "my own notes\n"  # untouched
    assert json.loads(archi("get", uuid, str(dest), "--json", env=env).stdout)["exit_code"] == 2
    forced = archi("get", uuid, str(dest), "-f", env=env)
    assert forced.returncode == 0, forced.stderr
    assert (dest / "a.txt").read_text() == "alpha\n" and (dest / "sub" / "b.txt").read_text() == "beta\n"
    # a file that is one whole block, already downloaded and unchanged, is not an overwrite: a re-run goes on
    single = tmp_path / "single.bin"
    single.write_bytes(os.urandom(4096))
    whole = json.loads(archi("put", str(single), "--json", env=env).stdout)["uuid"]
    assert archi("get", whole, str(tmp_path / "again"), env=env).returncode == 0
    assert archi("get", whole, str(tmp_path / "again"), env=env).returncode == 0


def test_a_cluster_directory_that_is_not_one_is_bad_input(tmp_path: Path) -> None:
    for command in ("up", "status", "stop"):
        result = archi("cluster", command, str(tmp_path / "nothing-here"))
        assert result.returncode == 2 and "archi cluster init" in result.stderr, (command, result.stderr)
    assert (tmp_path / "nothing-here" / CONFIG_NAME).exists() is False


def test_federation_up_names_each_clusters_web_ui_and_its_export_line() -> None:
    """What `archi federation up` prints for people (its --json: test_cluster_lifecycle.py)."""
    from archipelago.cli.cluster_cmds import federation_text

    members = [{"cluster_id": cid, "api_url": f"https://127.0.0.1:{port}", "web_url": f"https://127.0.0.1:{port}/",
                "admin_token": f"v2/{cid}-gj3su-0/secret", "export": f"export ARCHI_API_HOST=https://127.0.0.1:{port} "
                f"ARCHI_API_TOKEN=v2/{cid}-gj3su-0/secret ARCHI_API_HOST_INSECURE=1"}
               for cid, port in (("z1111", 8001), ("z2222", 8002))]
    lines = federation_text(members, "http://127.0.0.1:25200").splitlines()  # type: ignore[arg-type]
    assert lines == [
        "z1111  API https://127.0.0.1:8001  web UI https://127.0.0.1:8001/  admin token v2/z1111-gj3su-0/secret",
        f"  {members[0]['export']}",
        "z2222  API https://127.0.0.1:8002  web UI https://127.0.0.1:8002/  admin token v2/z2222-gj3su-0/secret",
        f"  {members[1]['export']}", "resolver http://127.0.0.1:25200"]
    assert _env(lines[1].strip(), Path("/nonexistent"))["ARCHI_API_HOST"] == "https://127.0.0.1:8001"
