"""A hostile container, on a real `archi cluster up`, for every runtime this machine has (bubblewrap;
Docker and Podman where their engines run): it is not root, has no capabilities, cannot read the
cluster's secrets, database or another container's files, cannot write outside its output, cannot
reach the network unless it asked for API access — and what it leaves in its output cannot make
the executor read a host file for it."""

from __future__ import annotations

import glob
import re
import secrets
import tempfile
import time
from pathlib import Path

import pytest

from archipelago.compute.dispatch.service import state_directory
from archipelago.executor.sandbox import site_software
from archipelago.sdk import ApiClient, Collection
from tests.support.clusters import new_user
from tests.support.compute import submit, wait_container, wait_final
from tests.support.runtimes import RUNTIMES, RuntimeCluster, runtime_cluster

pytestmark = pytest.mark.integration
MAX_DISK = 32 << 20  # what a container of these clusters may write


@pytest.fixture(scope="module", params=RUNTIMES)
def site(request, tmp_path_factory) -> RuntimeCluster:
    with runtime_cluster(request.param, tmp_path_factory.mktemp(f"sandbox-{request.param}"),
                         max_disk=MAX_DISK) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def planted_home_secret() -> Path:
    """A file in the home of the user the cluster runs as (root here): no container may read it."""
    secret = Path.home() / ".archipelago-sandbox-test-secret"
    secret.write_text("home secret\n")
    secret.chmod(0o644)  # readable by anyone on the host who can reach it: only the view protects it
    yield secret
    secret.unlink(missing_ok=True)


def tenant(site: RuntimeCluster, name: str) -> ApiClient:
    user = new_user(site.admin, name)
    site.grant_image(user)
    return user


def run(site: RuntimeCluster, user: ApiClient, script: str, **overrides) -> tuple[dict, dict[str, bytes], str]:
    """The Final request, its output files and its crunch-run log."""
    request = submit(user, ["sh", "-c", script], **{"container_image": site.image, **overrides})
    done = wait_final(user, request["uuid"], timeout=180)
    log = Collection(user, done["log_uuid"]).read("crunch-run.txt").decode()
    container = user.containers.get(done["container_uuid"])
    assert (container["state"], container["exit_code"]) == ("Complete", 0), log
    output = Collection(user, done["output_uuid"])
    return done, {path: output.read(path) for path, _ in output.files()}, log


def status(report: bytes) -> dict[str, str]:
    return dict(line.split(":", 1) for line in report.decode().splitlines() if ":" in line)


def test_the_command_is_an_unprivileged_uid_without_capabilities(site):
    _, out, log = run(site, tenant(site, "probe"), "cat /proc/self/status > status.txt; id -u > uid.txt")
    fields = {k: v.strip() for k, v in status(out["status.txt"]).items()}
    uid = int(out["uid.txt"])
    assert uid >= 1000 and fields["Uid"].split()[:2] == [str(uid)] * 2, log
    for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[capabilities], 16) == 0, (capabilities, fields[capabilities])
    assert fields["NoNewPrivs"] == "1"


def test_the_clusters_secrets_database_and_home_are_not_there(site, planted_home_secret):
    cluster_dir = site.process.directory
    secrets = [cluster_dir / "cluster.yml", cluster_dir / "admin-token", cluster_dir / "tls.key",
               cluster_dir / "archipelago.db", planted_home_secret, Path("/etc/shadow"), Path("/etc/munge/munge.key"),
               state_directory(site.process.config)]
    probe = "; ".join(f"cat {p} >/dev/null 2>&1 && echo READ {p}; ls {p} >/dev/null 2>&1 && echo SEEN {p}"
                      for p in secrets)
    _, out, _ = run(site, tenant(site, "snoop"), f"({probe}) > found.txt; find /root /home /work /srv /var "
                                                 "-maxdepth 4 > around.txt 2>/dev/null; true")
    assert out["found.txt"] == b"", out["found.txt"].decode()
    # of those directories, only the way to the software the site shows (this Archipelago's install) is there
    software = [str(p) for p in site_software([])]
    strays = [seen for seen in out["around.txt"].decode().splitlines()
              if not any(s.startswith(seen + "/") or seen == s or seen.startswith(s + "/") for s in software)]
    assert strays == []


def test_nothing_outside_its_output_and_tmp_is_writable(site):
    cluster_dir = site.process.directory
    targets = ["/x", "/usr/x", "/etc/x", "/root/x", "/bin/x", f"{cluster_dir}/x", f"{cluster_dir}/cluster.yml"]
    probe = "; ".join(f"(echo pwned > {t}) 2>/dev/null && echo WROTE {t}" for t in targets)
    script = (f"({probe}; mount -o remount,rw / 2>/dev/null && echo REMOUNTED /; "
              "mount -o remount,rw,bind /usr 2>/dev/null && echo REMOUNTED /usr) > wrote.txt; "
              "echo mine > /tmp/t && cat /tmp/t > tmp.txt")
    _, out, _ = run(site, tenant(site, "vandal"), script)
    assert out["wrote.txt"] == b"", out["wrote.txt"].decode()
    assert out["tmp.txt"] == b"mine\n"
    assert not (cluster_dir / "x").exists() and b"pwned" not in (cluster_dir / "cluster.yml").read_bytes()


def test_no_network_unless_the_container_asks_for_api_access(site):
    host, port = site.process.config.keepstore.listen.rsplit(":", 1)
    # stdin stays open a while: busybox nc stops reading the answer when its input ends
    probe = (f"(printf 'GET / HTTP/1.0\\r\\n\\r\\n'; sleep 2) | busybox nc {host} {port} > net.txt 2>&1; "
             "echo done >> net.txt")
    _, closed, _ = run(site, tenant(site, "offline"), probe)
    assert b"HTTP/1." not in closed["net.txt"] and b"done" in closed["net.txt"], closed["net.txt"]
    _, opened, _ = run(site, tenant(site, "online"), probe, runtime_constraints={"API": True, "ram": 64 << 20,
                                                                                   "vcpus": 1})
    assert b"HTTP/1." in opened["net.txt"], opened["net.txt"]  # the same probe works where it may


def test_another_containers_files_and_processes_are_out_of_reach(site):
    victim, attacker = tenant(site, "victim"), tenant(site, "attacker")
    running = submit(victim, ["sh", "-c", "echo victim-data > /out/private.txt; sleep 30; echo survived > /out/s"],
                     container_image=site.image)
    container = wait_container(victim, running["container_uuid"] or _container(victim, running["uuid"]),
                               ("Running",), timeout=120)
    deadline_paths: list[str] = []
    for _ in range(100):  # the victim's output directory on this host, once it has written its file
        deadline_paths = glob.glob(f"{tempfile.gettempdir()}/crunch-{container['uuid']}-*/mounts/output/private.txt")
        if deadline_paths:
            break
        wait_container(victim, container["uuid"], ("Running",))
    assert deadline_paths, "the victim's output was not found on this host"
    host_path = deadline_paths[0]
    script = (f"(cat {host_path} 2>/dev/null; ls {Path(host_path).parent} 2>/dev/null; "
              f"(echo tampered > {host_path}) 2>/dev/null && echo WROTE) > found.txt; kill -9 -1 2>/dev/null; true")
    _, out, _ = run(site, attacker, script)
    assert out["found.txt"] == b"", out["found.txt"].decode()
    victim.container_requests.update(running["uuid"], {"priority": 0})  # it has proved its point: stop it
    done = wait_final(victim, running["uuid"], timeout=120)
    if done["output_uuid"]:
        assert Collection(victim, done["output_uuid"]).read("private.txt") == b"victim-data\n"


def _container(user: ApiClient, request_uuid: str) -> str:
    from tests.support.compute import container_of

    return container_of(user, request_uuid, timeout=60)


def test_output_links_never_make_the_executor_read_a_host_file(site):
    user = tenant(site, "linker")
    data = Collection(user)
    data.write("dir/data.txt", b"mounted bytes\n")
    held = data.save_new("input")
    cluster_yml = site.process.directory / "cluster.yml"
    script = ("echo inside > /out/real.txt; ln -s real.txt /out/alias.txt; ln -s /out/real.txt /out/absolute.txt; "
              f"ln -s {cluster_yml} /out/config.yml; ln -s /etc/shadow /out/shadow; "
              "ln -s ../../../../../../../../etc/hostname /out/climb; ln -s /in/dir/data.txt /out/copy.txt; "
              "ln -s /in/dir /out/copied-dir; ln -s . /out/loop; ln -s nowhere /out/dangling; mkfifo /out/fifo")
    done, out, log = run(site, user, script,
                         mounts={"/out": {"kind": "tmp"}, "/in": {"kind": "collection", "uuid": held["uuid"]}})
    assert out["real.txt"] == out["alias.txt"] == out["absolute.txt"] == b"inside\n"
    assert out["copy.txt"] == out["copied-dir/data.txt"] == b"mounted bytes\n"
    assert not {"config.yml", "shadow", "climb", "fifo", "dangling"} & set(out), sorted(out)
    assert not any(path.startswith("loop/") for path in out)
    assert re.search(r"error: output symlink config\.yml -> \S+ points outside", log), log
    assert "error: output symlink shadow -> /etc/shadow points outside" in log
    if site.runtime == "bubblewrap":  # the same blocks, by reference: nothing was read through the link
        manifest = Collection(user, done["output_uuid"]).record["manifest_text"]
        assert manifest.count(data.record["manifest_text"].split()[1].split("+")[0]) >= 1


def test_environment_values_are_on_no_command_line_of_this_host(site):
    user = tenant(site, "env")
    marker = f"hunter2-{secrets.token_hex(8)}"
    request = submit(user, ["sh", "-c", "sleep 4; echo $SECRET > seen.txt"], container_image=site.image,
                     environment={"SECRET": marker, "LD_PRELOAD": "/nonexistent/spy.so"})
    seen_running = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not seen_running:
        seen_running = user.containers.get(_container(user, request["uuid"]))["state"] == "Running"
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                assert marker.encode() not in cmdline.read_bytes(), f"{cmdline}: the secret is on a command line"
            except OSError:
                continue
    done = wait_final(user, request["uuid"], timeout=180)
    assert Collection(user, done["output_uuid"]).read("seen.txt") == marker.encode() + b"\n"


def test_a_hostile_image_file_name_is_no_engine_option(site):
    """The image's ID is what the engine computes from its config: a tar named `--pid=host.tar` is
    just a tar, and the container does not share the host's processes."""
    if site.image is None:
        pytest.skip("bubblewrap runs no images")
    user = tenant(site, "imager")
    [image] = site.admin.collections.list([["name", "=", f"Docker image {site.image}"]])["items"]
    source = Collection(site.admin, image["uuid"])
    [(name, _)] = list(source.files())
    hostile = Collection(user)
    hostile.write("--pid=host.tar", source.read(name))
    held = hostile.save_new("an image with a hostile name")
    _, out, log = run(site, user, "cat /proc/1/cmdline > pid1.txt; ls /proc | grep -c '^[0-9]' > pids.txt",
                      container_image=held["portable_data_hash"])
    assert b"sh" in out["pid1.txt"] and int(out["pids.txt"]) < 10, out  # its own processes only
    assert "--pid=host" not in log.split("runtime:")[1].splitlines()[0]


def test_a_container_writing_past_the_disk_cap_is_stopped(site):
    user = tenant(site, "filler")
    request = submit(user, ["sh", "-c", f"head -c {2 * MAX_DISK} /dev/zero > big; sleep 30"],
                     container_image=site.image, container_count_max=1)
    done = wait_final(user, request["uuid"], timeout=120)
    container = user.containers.get(done["container_uuid"])
    assert container["state"] == "Cancelled"
    assert "wrote" in container["runtime_status"]["error"] and str(MAX_DISK) in container["runtime_status"]["error"]
