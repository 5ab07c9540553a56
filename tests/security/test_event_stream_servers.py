"""The change stream of a real cluster (`archi cluster up`: its API over HTTPS, its dispatcher and
executors; SQLite and PostgreSQL): mallory, subscribed while alice's container runs, hears nothing of
it; alice and the admin hear it change. The rules one at a time: tests/security/test_event_stream.py."""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from typing import Any

import pytest

from archipelago.sdk import ApiClient
from tests.support.clusters import new_user
from tests.support.compute import submit, wait_final

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")]


class Follower:
    """`rpc.ApiConnection.events()` in a thread, as the dispatcher and the CWL runner follow it."""

    def __init__(self, client: ApiClient):
        self.heard: list[dict[str, Any]] = []
        threading.Thread(target=self._follow, args=(client,), daemon=True).start()

    def _follow(self, client: ApiClient) -> None:
        with contextlib.suppress(ConnectionError):  # the cluster stops at the end of the module
            for event in client.connection.events():
                self.heard.append(event)

    def wait_for(self, uuid: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not any(e["uuid"] == uuid for e in self.heard):
            assert time.monotonic() < deadline, f"{uuid} never heard of"
            time.sleep(0.05)


def test_a_stranger_hears_nothing_of_a_running_container_its_owner_and_the_dispatcher_do(cluster):
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    alice, mallory = new_user(admin, "alice"), new_user(admin, "mallory")
    followers = {"admin": Follower(admin), "alice": Follower(alice), "mallory": Follower(mallory)}
    time.sleep(0.5)  # subscribed before the work starts
    request = submit(alice, ["true"], use_existing=False)
    done = wait_final(alice, request["uuid"])
    for name, client in (("alice", alice), ("mallory", mallory), ("admin", admin)):
        followers[name].wait_for(client.collections.create({"description": f"marker of {name}"})["uuid"])
    alices = {request["uuid"], done["container_uuid"], done["output_uuid"], done["log_uuid"]}
    assert alices <= {e["uuid"] for e in followers["alice"].heard}
    assert done["container_uuid"] in {e["uuid"] for e in followers["admin"].heard}
    mallory_uuid = mallory.users.current()["uuid"]
    assert all(e["owner_uuid"] == mallory_uuid for e in followers["mallory"].heard), followers["mallory"].heard
