"""One tenant's container must not stall everyone else's work (issue 17, defect 9): a container the
dispatcher cannot size or start is cancelled with the reason, and the others are dispatched in the
same pass. In process: the real API and lifecycle, the real local backend's sizing, and a stand-in
for its process spawning (FakeSpawner records what it would start)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from archipelago.compute.dispatch.local import LocalProcesses
from archipelago.compute.dispatch.loop import DispatchLoop
from archipelago.db.models import Container
from tests.support.backends import Site, single_cluster

REQUEST = {"command": ["true"], "container_image": None, "output_path": "/out", "cwd": "/out",
           "runtime_constraints": {"ram": 64 << 20, "vcpus": 1}, "state": "Committed",
           "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 20}}}


class FakeSpawner(LocalProcesses):
    """LocalProcesses' bookkeeping and sizing (fits, _needs), without executor processes; start
    fails for the containers named in `broken`, as a spawn that cannot happen would."""

    def __init__(self, state_dir: Path):
        super().__init__(state_dir, {}, cores=64, ram=1 << 40)
        self.started: list[str] = []
        self.broken: set[str] = set()

    def start(self, container: dict[str, Any]) -> None:
        if container["uuid"] in self.broken:
            raise OSError("no executor could be started")
        self._reserved[container["uuid"]] = self._needs(container)
        self.started.append(container["uuid"])

    def alive(self, uuid: str) -> bool:
        return uuid in self.started

    def stop(self, uuid: str) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return single_cluster(tmp_path)  # one per test: each sees only its own queue


@pytest.fixture
def loop(site: Site, tmp_path: Path) -> DispatchLoop:
    return DispatchLoop(site.client(site.admin), FakeSpawner(tmp_path / "dispatch"))


def submit(site: Site, priority: int, **overrides: Any) -> dict[str, Any]:
    user = site.new_user("tenant")
    return site.backend.create(user, "container_requests", {**REQUEST, "priority": priority, **overrides})


def slip_past_validation(site: Site, container_uuid: str, constraints: dict[str, Any]) -> None:
    """A container whose constraints the API would refuse now (written before the rules, or by a bug)."""
    with site.local.db.session() as session:
        session.execute(update(Container).where(Container.uuid == container_uuid)
                        .values(runtime_constraints=constraints))


def container(site: Site, uuid: str) -> dict[str, Any]:
    return site.backend.get(site.admin, "containers", uuid)


@pytest.mark.parametrize("constraints", [{"ram": "lots", "vcpus": 1}, {"ram": 1 << 20, "vcpus": "x"},
                                         {"ram": None, "vcpus": 1}],
                         ids=["ram-lots", "vcpus-x", "ram-null"])
def test_a_container_nothing_can_size_is_cancelled_and_the_queue_moves_on(site, loop, constraints):
    bad = submit(site, 1000)  # the highest priority: first in the queue
    good = submit(site, 1, command=["echo", "next"])
    slip_past_validation(site, bad["container_uuid"], constraints)
    loop.tick()
    refused = container(site, bad["container_uuid"])
    assert refused["state"] == "Cancelled"
    assert "cannot judge what it needs" in refused["runtime_status"]["error"]
    assert container(site, good["container_uuid"])["state"] == "Locked"
    assert loop.backend.started == [good["container_uuid"]]


def test_the_refused_request_ends_after_its_tries_and_never_blocks_the_queue(site, loop):
    bad = submit(site, 1000, container_count_max=2)
    slip_past_validation(site, bad["container_uuid"], {"ram": "lots"})
    for _ in range(4):  # each pass cancels the current try; the lifecycle queues a retry while tries are left
        loop.tick()
        retry = site.backend.get(site.admin, "container_requests", bad["uuid"])
        if retry["state"] != "Final":
            slip_past_validation(site, retry["container_uuid"], {"ram": "lots"})
    final = site.backend.get(site.admin, "container_requests", bad["uuid"])
    assert final["state"] == "Final" and final["container_count"] == 2
    assert container(site, final["container_uuid"])["state"] == "Cancelled"
    late = submit(site, 1)
    loop.tick()
    assert loop.backend.started == [late["container_uuid"]]


def test_a_container_that_cannot_be_started_is_cancelled_and_the_next_one_starts(site, loop):
    bad = submit(site, 1000)
    good = submit(site, 1, command=["echo", "next"])
    loop.backend.broken.add(bad["container_uuid"])
    loop.tick()
    refused = container(site, bad["container_uuid"])
    assert refused["state"] == "Cancelled"
    assert "no executor could be started" in refused["runtime_status"]["error"]
    assert bad["container_uuid"] not in loop.backend.tracked()
    assert container(site, good["container_uuid"])["state"] == "Locked"
    assert loop.backend.started == [good["container_uuid"]]
