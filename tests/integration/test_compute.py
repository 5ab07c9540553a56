"""Containers run for real: a federation of two clusters on loopback, each with its local
dispatcher, executors in bubblewrap, data read through Keep and the federation."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from archipelago.sdk import ApiClient, ApiRequestError, Collection
from tests.support.clusters import new_user, running_federation
from tests.support.compute import container_of, submit, wait_container, wait_final

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")]


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    with running_federation(tmp_path_factory.mktemp("compute"), 2) as federation:
        yield federation


def logs(client: ApiClient, request: dict) -> dict[str, str]:
    collection = Collection(client, request["log_uuid"])
    return {path: collection.read(path).decode() for path, _ in collection.files()}


def test_a_container_reads_a_collection_held_by_another_cluster_and_writes_its_output(federation):
    home, other = federation["z1111"], federation["z2222"]
    alice = new_user(home, "alice")
    from archipelago.formats.tokens import salt_token

    at_other = ApiClient(other.base, salt_token(alice.token, "z2222"), insecure=True)
    cohort = Collection(at_other)
    cohort.write("cohort/rows.csv", b"id,value\n1,10\n2,32\n")
    cohort.write("cohort/unused.bin", os.urandom(1 << 20))
    held = cohort.save_new("cohort at z2222")
    request = submit(alice, ["sh", "-c", "awk -F, 'NR>1 {s+=$2} END {print s}' /in/rows.csv > sum.txt"],
                     mounts={"/out": {"kind": "tmp", "capacity": 1 << 20},
                             "/in": {"kind": "collection", "uuid": held["uuid"], "path": "cohort"}})
    done = wait_final(alice, request["uuid"])
    container = alice.containers.get(done["container_uuid"])
    assert (container["state"], container["exit_code"]) == ("Complete", 0), logs(alice, done)
    output = Collection(alice, done["output_uuid"])
    assert output.read("sum.txt") == b"42\n"
    assert output.record["owner_uuid"] == alice.users.current()["uuid"]
    assert "crunch-run.txt" in logs(alice, done)
    assert "held by cluster z2222" in logs(alice, done)["crunch-run.txt"]


def test_an_equal_request_reuses_the_finished_container_and_starts_nothing(federation):
    alice = new_user(federation["z1111"], "alice")
    first = wait_final(alice, submit(alice, ["sh", "-c", "date +%s%N > t.txt"])["uuid"])
    again = submit(alice, ["sh", "-c", "date +%s%N > t.txt"])
    assert again["state"] == "Final" and again["container_uuid"] == first["container_uuid"]
    reused = Collection(alice, again["output_uuid"]).read("t.txt")
    assert reused == Collection(alice, first["output_uuid"]).read("t.txt")
    fresh = wait_final(alice, submit(alice, ["sh", "-c", "date +%s%N > t.txt"], use_existing=False)["uuid"])
    assert fresh["container_uuid"] != first["container_uuid"]


def test_a_failing_command_ends_final_with_its_exit_code_and_readable_logs(federation):
    alice = new_user(federation["z1111"], "alice")
    done = wait_final(alice, submit(alice, ["sh", "-c", "echo something broke >&2; exit 3"])["uuid"])
    assert alice.containers.get(done["container_uuid"])["exit_code"] == 3
    texts = logs(alice, done)
    assert "something broke" in texts["stderr.txt"] and "status code 3" in texts["crunch-run.txt"]
    first_line = texts["stderr.txt"].splitlines()[0]
    assert first_line[:4].isdigit() and first_line[10] == "T" and first_line.split(" ")[0].endswith("Z")


def test_cancelling_stops_a_running_container(federation):
    alice = new_user(federation["z1111"], "alice")
    request = submit(alice, ["sleep", "60"])
    container = wait_container(alice, container_of(alice, request["uuid"]), ("Running",))
    alice.container_requests.update(request["uuid"], {"priority": 0})
    done = wait_final(alice, request["uuid"], timeout=30)
    assert alice.containers.get(container["uuid"])["state"] == "Cancelled"
    assert done["log_uuid"] and "received signal" in logs(alice, done)["crunch-run.txt"]


def test_a_killed_executor_is_noticed_and_its_container_retried(federation):
    alice = new_user(federation["z1111"], "alice")
    # long enough to be still running when killed, however slowly the test gets there
    request = submit(alice, ["sh", "-c", "sleep 30; echo ok > done.txt"], container_count_max=2)
    first = wait_container(alice, container_of(alice, request["uuid"]), ("Running",))
    # the executor (and, for an instant, its child between fork and exec, which has its argv)
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and _is_executor_of(int(p), first["uuid"])]
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    done = wait_final(alice, request["uuid"], timeout=120)
    assert done["container_count"] == 2 and done["container_uuid"] != first["uuid"]
    assert Collection(alice, done["output_uuid"]).read("done.txt") == b"ok\n"


def test_a_killed_executor_takes_its_sandbox_with_it(federation):
    """SIGKILL leaves the executor no time to stop its container: the sandbox must not outlive it.
    Killed while bubblewrap is still setting up (the marker is in its command line from its start),
    its namespace's first process could miss bubblewrap's own --die-with-parent: the dispatcher,
    finding the executor dead, ends what is left in the container's cgroups."""
    alice = new_user(federation["z1111"], "alice")
    marker = f"orphan-{secrets.token_hex(6)}"
    request = submit(alice, ["sh", "-c", f"sleep 300; echo {marker}"], container_count_max=1)
    container = wait_container(alice, container_of(alice, request["uuid"]), ("Running",))
    deadline = time.monotonic() + 30  # Running is said as the sandbox starts; its command comes just after
    while not _running(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _running(marker)
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit() and _is_executor_of(int(p), container["uuid"])]:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _running(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(marker)  # before: the sandbox, reparented to init, slept on
    alice.container_requests.update(request["uuid"], {"priority": 0})


@pytest.mark.skipif(not Path("/sys/fs/cgroup/memory").is_dir(), reason="no cgroup v1 memory controller here")
def test_what_a_container_leaves_in_its_groups_ends_with_it(federation):
    """A process still in the container's cgroups when its command ends (as the first process of a
    sandbox whose bubblewrap was stopped while starting: bubblewrap's own --die-with-parent missed,
    and it went on, reparented to init) is ended by the executor, not left running."""
    alice = new_user(federation["z1111"], "alice")
    request = submit(alice, ["sleep", "5"], container_count_max=1)
    container = wait_container(alice, container_of(alice, request["uuid"]), ("Running",))
    group = Path(f"/sys/fs/cgroup/memory/archipelago/{container['uuid']}")
    deadline = time.monotonic() + 30
    while not group.is_dir() and time.monotonic() < deadline:
        time.sleep(0.1)
    stray = subprocess.Popen(["sleep", "300"])  # stands for what such a sandbox leaves
    try:
        (group / "cgroup.procs").write_text(str(stray.pid))
        assert wait_final(alice, request["uuid"], timeout=120)["state"] == "Final"
        assert stray.wait(timeout=60) == -signal.SIGKILL
        assert not group.exists()
    finally:
        stray.kill()
        stray.wait()


def _running(marker: str) -> bool:
    """Is a process whose command line names the marker alive?"""
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def _is_executor_of(pid: int, container_uuid: str) -> bool:
    """Named in its command line, or (a warm executor given the container) in its work directory."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return b"archipelago.executor" in argv and (container_uuid.encode() in argv or container_uuid in cwd)


def test_missing_inputs_fail_clearly(federation):
    alice = new_user(federation["z1111"], "alice")
    with pytest.raises(ApiRequestError) as info:
        submit(alice, ["true"], mounts={"/out": {"kind": "tmp"},
                                        "/in": {"kind": "collection", "uuid": "z1111-4zz18-000000000000000"}})
    assert info.value.status == 422 and "not found" in info.value.message
    missing = "0123456789abcdef0123456789abcdef+3"
    done = wait_final(alice, submit(alice, ["true"], container_count_max=1,
                                    mounts={"/out": {"kind": "tmp"},
                                            "/in": {"kind": "collection", "portable_data_hash": missing}})["uuid"])
    container = alice.containers.get(done["container_uuid"])
    assert container["state"] == "Cancelled" and missing in container["runtime_status"]["error"]
    assert missing in logs(alice, done)["crunch-run.txt"]


def test_a_request_made_on_another_cluster_runs_there(federation):
    home = federation["z1111"]
    alice = new_user(home, "alice")
    request = submit(alice, ["sh", "-c", "hostname > where.txt"], cluster_id="z2222")
    assert request["uuid"].startswith("z2222-xvhdp-")
    done = wait_final(alice, request["uuid"])
    assert done["container_uuid"].startswith("z2222-dz642-")
    assert alice.containers.get(done["container_uuid"])["exit_code"] == 0


def test_restricted_data_cannot_be_mounted_from_another_cluster(federation):
    home = federation["z1111"]
    alice = new_user(home, "alice")
    private = Collection(alice)
    private.write("patients.csv", b"id,diagnosis\n1,x\n")
    record = private.save_new("private cohort")
    home.collections.update(record["uuid"], {"residency": "cluster"})
    # at home it is mounted and read
    here = wait_final(alice, submit(alice, ["wc", "-l", "/in/patients.csv"],
                                    mounts={"/out": {"kind": "tmp"}, "/in": {"kind": "collection",
                                                                             "uuid": record["uuid"]}})["uuid"])
    assert alice.containers.get(here["container_uuid"])["exit_code"] == 0
    # a container on z2222 cannot read it
    away = wait_final(alice, submit(alice, ["cat", "/in/patients.csv"], cluster_id="z2222", container_count_max=1,
                                    mounts={"/out": {"kind": "tmp"},
                                            "/in": {"kind": "collection",
                                                    "portable_data_hash": record["portable_data_hash"]}})["uuid"])
    container = alice.containers.get(away["container_uuid"])
    assert container["state"] == "Cancelled" and "residency" in container["runtime_status"]["error"]


def test_a_remote_requests_runtime_token_is_short_lived_and_refused_outside_its_scope(federation):
    from datetime import UTC, datetime

    home, other = federation["z1111"], federation["z2222"]
    alice = new_user(home, "alice")
    request = submit(alice, ["sleep", "30"], cluster_id="z2222", scheduling_parameters={"max_run_time": 600})
    container_uuid = container_of(alice, request["uuid"])
    wait_container(other, container_uuid, ("Locked", "Running"))
    auth = other.request("GET", f"containers/{container_uuid}/auth")
    assert auth["uuid"].startswith("z2222-gj3su-")  # its own token, for what is on z2222
    assert auth["runtime_token"].startswith("v2/z1111-gj3su-")  # issued by alice's home, for the rest
    runtime = ApiClient(home.base, auth["runtime_token"], insecure=True)
    record = runtime.api_client_authorizations.current()
    lifetime = datetime.fromisoformat(record["expires_at"].replace("Z", "+00:00")) - datetime.now(UTC)
    assert 600 < lifetime.total_seconds() <= 600 + 3600 + 5
    assert runtime.users.current()["uuid"] == alice.users.current()["uuid"]
    runtime.collections.list(limit=1)  # in scope
    for call in (lambda: runtime.groups.list(), lambda: runtime.links.create({"link_class": "tag", "head_uuid": "x"}),
                 lambda: runtime.api_client_authorizations.create({})):
        with pytest.raises(ApiRequestError) as info:
            call()
        assert info.value.status == 403
    alice.container_requests.update(request["uuid"], {"priority": 0})
    wait_final(alice, request["uuid"])


def test_the_change_stream_tells_of_a_container_as_it_changes(federation):
    import threading

    alice = new_user(federation["z1111"], "alice")
    seen: list[dict] = []

    def follow() -> None:
        for event in alice.connection.events(["containers", "container_requests"]):
            seen.append(event)
            if event["kind"] == "container_requests" and event["event_type"] == "update" and len(seen) > 3:
                return

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    request = submit(alice, ["true"], use_existing=False)
    done = wait_final(alice, request["uuid"])
    reader.join(10)
    kinds = {(e["kind"], e["uuid"]) for e in seen}
    assert ("container_requests", request["uuid"]) in kinds and ("containers", done["container_uuid"]) in kinds
    assert all(e["owner_uuid"] == alice.users.current()["uuid"] for e in seen if e["kind"] == "container_requests")


def test_a_container_is_held_to_its_ram(federation):
    alice = new_user(federation["z1111"], "alice")
    done = wait_final(alice, submit(alice, ["sh", "-c", "head -c 400000000 /dev/zero | tail -n 1 > /dev/null"],
                                    runtime_constraints={"ram": 64 << 20, "vcpus": 1})["uuid"])
    container = alice.containers.get(done["container_uuid"])
    log = logs(alice, done)["crunch-run.txt"]
    if "not enforced" in log:
        pytest.skip("this machine gives no memory cgroup: " + log.split("not enforced: ")[1].splitlines()[0])
    assert container["exit_code"] != 0 and "ran out of its 67108864 bytes of RAM" in log


def test_a_container_reading_one_file_fetches_only_that_files_blocks(federation):
    from archipelago.executor.fusefs import unavailable

    if unavailable() is not None:
        pytest.skip(f"FUSE is not available here: {unavailable()}")
    alice = new_user(federation["z1111"], "alice")
    keep = alice.keep()
    wanted, other = os.urandom(300_000), os.urandom(3_000_000)
    first, second = keep.put(wanted), keep.put(other)
    manifest = f". {first} {second} 0:{len(wanted)}:wanted.bin {len(wanted)}:{len(other)}:other.bin\n"
    held = alice.collections.create({"name": "two blocks", "manifest_text": manifest})
    done = wait_final(alice, submit(alice, ["sh", "-c", "cat /in/wanted.bin | wc -c > size.txt; ls /in > names.txt"],
                                    mounts={"/out": {"kind": "tmp"},
                                            "/in": {"kind": "collection", "uuid": held["uuid"]}})["uuid"])
    output = Collection(alice, done["output_uuid"])
    assert output.read("size.txt").strip() == str(len(wanted)).encode()
    assert output.read("names.txt").split() == [b"other.bin", b"wanted.bin"]
    log = logs(alice, done)["crunch-run.txt"]
    assert "(FUSE, read on demand)" in log
    assert f"read {len(wanted)} bytes of mounted data held here" in log  # not the other file's block


def test_a_keep_mount_reaches_any_readable_collection_by_pdh(federation):
    from archipelago.executor.fusefs import unavailable

    if unavailable() is not None:
        pytest.skip(f"FUSE is not available here: {unavailable()}")
    alice = new_user(federation["z1111"], "alice")
    data = Collection(alice)
    data.write("dir/x.txt", b"by content\n")
    pdh = data.save_new("by pdh")["portable_data_hash"]
    done = wait_final(alice, submit(alice, ["sh", "-c", f"cat /keep/{pdh}/dir/x.txt > got.txt"],
                                    mounts={"/out": {"kind": "tmp"}, "/keep": {"kind": "keep"}})["uuid"])
    assert Collection(alice, done["output_uuid"]).read("got.txt") == b"by content\n", logs(alice, done)


def test_a_running_containers_logs_can_be_followed(federation):
    import time

    alice = new_user(federation["z1111"], "alice")
    request = submit(alice, ["sh", "-c", "echo first; sleep 60; echo second"])
    uuid = wait_container(alice, container_of(alice, request["uuid"]), ("Running",))["uuid"]
    deadline, live = time.monotonic() + 30, ""
    while "first" not in live and time.monotonic() < deadline:
        time.sleep(0.2)
        if (container := alice.containers.get(uuid))["log"]:
            published = Collection(alice, container["log"])
            live = published.read("stdout.txt").decode() if "stdout.txt" in dict(published.files()) else ""
    assert container["state"] == "Running" and "first" in live, "no log published while running"
    assert "second" not in live
    alice.container_requests.update(request["uuid"], {"priority": 0})  # seen: no need to wait for the rest
    done = wait_final(alice, request["uuid"], timeout=60)
    assert "first" in logs(alice, done)["stdout.txt"]  # what was followed is in the final log too


def test_a_visitors_container_reads_restricted_data_where_it_lives_and_only_its_result_travels(federation):
    home, other = federation["z1111"], federation["z2222"]
    alice = new_user(home, "alice")
    alice_uuid = alice.users.current()["uuid"]
    cohort = Collection(other)
    cohort.write("cohort.csv", b"id,value\n1,5\n2,7\n3,9\n")
    held = cohort.save_new("restricted cohort at z2222")
    other.collections.update(held["uuid"], {"residency": "cluster"})
    other.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": alice_uuid,
                        "head_uuid": held["uuid"]})
    with pytest.raises(ApiRequestError) as info:  # she may not take it home
        Collection(alice, held["uuid"]).read("cohort.csv")
    assert info.value.status == 403
    done = wait_final(alice, submit(alice, ["sh", "-c", "tail -n +2 /in/cohort.csv | wc -l > rows.txt"],
                                    cluster_id="z2222",
                                    mounts={"/out": {"kind": "tmp"},
                                            "/in": {"kind": "collection", "uuid": held["uuid"]}})["uuid"])
    assert Collection(alice, done["output_uuid"]).read("rows.txt") == b"3\n", logs(alice, done)
