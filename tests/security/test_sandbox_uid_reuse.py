"""What a dead executor's container leaves running is ended. A sandbox uid is handed to the next
container only once nothing runs as it any more: processes left behind would otherwise share a
uid with the next tenant's command — able to signal and trace it and to write its output
directory. A uid still claimed by a live container is never touched. And the dispatcher's sweep of
a container whose executor died names only a container."""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from archipelago.executor.sandbox import _evict, claim_user, running_as

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root switches a container to a sandbox uid")
UID = 310_000  # beside the other sandbox tests' ranges


def orphan(uid: int, command: str) -> subprocess.Popen[bytes]:
    """A process running as `uid` that no lock stands for, as a dead executor's sandbox would be."""
    return subprocess.Popen(["sh", "-c", command], user=uid, group=uid, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(condition: Callable[[], bool]) -> None:
    """A bound, not a benchmark: the processes have started."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the test's processes did not start"
        time.sleep(0.01)


def test_what_a_dead_executors_container_left_running_is_ended_before_the_uid_is_reused(tmp_path: Path):
    left = orphan(UID, "sleep 300 & sleep 300 & wait")  # it forked: every process of the uid must go
    try:
        wait_for(lambda: len(running_as(UID)) >= 3)
        user = claim_user(tmp_path / "locks", UID, 1)
        assert user.uid == UID and user.evicted >= 3
        assert running_as(UID) == set()
        assert left.wait(10) != 0  # killed, not finished
        user.release()
    finally:
        if left.poll() is None:
            left.kill()


def test_a_uid_a_live_container_holds_is_passed_over_and_its_processes_left_alone(tmp_path: Path):
    live = claim_user(tmp_path / "locks", UID + 10, 1)
    running = orphan(UID + 10, "sleep 300")
    try:
        wait_for(lambda: bool(running_as(UID + 10)))
        other = claim_user(tmp_path / "locks", UID + 10, 2)
        assert other.uid == UID + 11 and other.evicted == 0
        assert running.poll() is None and running_as(UID + 10)
        other.release()
    finally:
        running.kill()
        running.wait()
        live.release()


def test_a_leftover_that_forks_and_exits_over_and_over_is_ended_too(tmp_path: Path):
    """Its pid "hops": a scan of /proc then a kill by pid never finds the live one (found by an
    attacker of the first version). The pipe's write end is inherited by every hop: EOF once all are dead."""
    read_end, write_end = os.pipe()
    hopper = subprocess.Popen(["perl", "-e", "while (1) { exit 0 if fork }"], user=UID + 20, group=UID + 20,
                              start_new_session=True, pass_fds=(write_end,), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        time.sleep(0.3)
        user = claim_user(tmp_path / "locks", UID + 20, 1)
        assert user.uid == UID + 20
        ended, _, _ = select.select([read_end], [], [], 5.0)
        assert ended and os.read(read_end, 1) == b""  # every process holding the pipe is gone
        user.release()
    finally:
        _evict(UID + 20)
        os.close(read_end)
        hopper.wait()


def test_the_sweep_names_only_a_container_and_ends_what_its_groups_hold(tmp_path: Path):
    """`python -m archipelago.executor --sweep UUID` (the dispatcher's, for an executor found dead):
    a name that is not a container UUID is refused before any path is made of it; the processes a
    container's group lists are killed and the group removed (a stand-in group: a directory whose
    cgroup.procs names a real process)."""
    from archipelago.executor.cgroups import end_processes
    from archipelago.executor.run import main

    assert main(["--sweep", "../../memory"]) == 2
    leftover = subprocess.Popen(["sleep", "300"])
    group = tmp_path / "cpu" / "archipelago" / "z1111-dz642-000000000000042"
    group.mkdir(parents=True)
    (group / "cgroup.procs").write_text(f"{leftover.pid}\n")
    end_processes("z1111-dz642-000000000000042", root=tmp_path)
    assert leftover.wait(10) == -9
