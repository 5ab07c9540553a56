"""The change stream tells each subscriber only of what it may read (an attacker review, break B).

mallory subscribes to `GET /arvados/v1/events` and waits: she used to hear of every committed
change on the cluster (kind, uuid, owner), alice's running container included, though a GET of it
answered 404. Now she hears of nothing of alice's; alice hears of hers; bob of what alice shares
with him; the admin (the dispatcher) of everything. In process, on the real API app and its
event hub; tests/integration/test_compute.py follows a real container through the stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from archipelago.api.app import create_app
from archipelago.backend.interface import Caller
from tests.support.backends import Site, single_cluster

REQUEST = {"command": ["true"], "container_image": None, "output_path": "/out", "cwd": "/out",
           "runtime_constraints": {"ram": 64 << 20, "vcpus": 1}, "priority": 1, "state": "Committed",
           "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 20}}}
OUTPUT = ". d41d8cd98f00b204e9800998ecf8427e+0 0:0:result.txt\n"
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    site = single_cluster(Path(tmp_path_factory.mktemp("events")))
    site.apps["events"] = create_app(site.local.config, site.local, site.local.db.events)
    return site


class Subscriber:
    """One `GET events` held open on the API app, in this process: the events it was sent."""

    def __init__(self, app: Any, token: str, **params: str):
        self.app, self.token, self.params = app, token, params
        self.status = 0
        self.heard: list[dict[str, Any]] = []
        self.connected, self.ended, self.stop = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def run(self) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "https", "path": "/arvados/v1/events", "raw_path": b"/arvados/v1/events",
                 "query_string": urlencode(self.params).encode(), "root_path": "",
                 "headers": [(b"authorization", f"Bearer {self.token}".encode())],
                 "server": ("z1111.test", 443), "client": ("127.0.0.1", 40000)}

        async def receive() -> dict[str, Any]:
            await self.stop.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
                self.connected.set()  # an error answers at once; a stream starts with ": connected"
            for line in message.get("body", b"").decode().splitlines():
                if line.startswith("data: "):
                    self.heard.append(json.loads(line[6:]))

        try:
            await self.app(scope, receive, send)
        finally:
            self.ended.set()
            self.connected.set()

    def uuids(self) -> set[str]:
        return {event["uuid"] for event in self.heard}


def listen(site: Site, tokens: dict[str, str], act: Callable[[], dict[str, Caller]],
           **params: str) -> dict[str, Subscriber]:
    """Subscribe each token, run `act` (the writes), then have each subscriber's own caller (as
    `act` returns them) write a marker it may read: once it has heard of its marker it has been told
    all it ever will of what came before (a stream is judged in order). A subscriber `act` names no
    caller for is given half a second."""

    async def main() -> dict[str, Subscriber]:
        subscribers = {name: Subscriber(site.apps["events"], token, **params) for name, token in tokens.items()}
        tasks = [asyncio.create_task(s.run()) for s in subscribers.values()]
        await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in subscribers.values())), TIMEOUT)
        markers = await asyncio.to_thread(lambda: {
            name: site.backend.create(caller, "collections", {"description": f"marker of {name}"})["uuid"]
            for name, caller in act().items()})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while loop.time() < deadline and not all(
                subscribers[name].ended.is_set() or marker in subscribers[name].uuids()
                for name, marker in markers.items()):
            await asyncio.sleep(0.01)
        for name, marker in markers.items():
            assert subscribers[name].ended.is_set() or marker in subscribers[name].uuids(), name
        if set(subscribers) - set(markers):  # one that may hear nothing at all: a while to be told anyway
            await asyncio.sleep(0.5)
        for subscriber in subscribers.values():
            subscriber.stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
        return subscribers

    return asyncio.run(main())


def run_to_completion(site: Site, container_uuid: str) -> None:
    """What the dispatcher and the executor do."""
    backend, admin = site.backend, site.admin
    backend.act(admin, "containers", container_uuid, "lock", "POST", {})
    backend.update(admin, "containers", container_uuid, {"state": "Running"})
    runner = backend.get(admin, "containers", container_uuid)["runtime_user_uuid"]
    pdh = backend.create(admin, "collections", {"name": f"output of {container_uuid}", "owner_uuid": runner,
                                                "manifest_text": OUTPUT})["portable_data_hash"]
    backend.update(admin, "containers", container_uuid,
                   {"state": "Complete", "exit_code": 0, "output": pdh, "log": pdh})


def token(site: Site, caller: Caller, **attrs: Any) -> str:
    made = site.backend.create(caller, "api_client_authorizations", attrs)
    return f"v2/{made['uuid']}/{made['api_token']}"


def test_a_stranger_hears_nothing_of_alices_work_alice_hears_hers_the_admin_everything(site):
    alice, bob, mallory = site.new_user("alice"), site.new_user("bob"), site.new_user("mallory")
    made: dict[str, Any] = {}

    def alices_work() -> dict[str, Caller]:
        project = site.backend.create(alice, "groups", {"name": "shared with bob", "group_class": "project"})
        site.backend.create(alice, "links", {"link_class": "permission", "name": "can_read",
                                             "tail_uuid": bob.user_uuid, "head_uuid": project["uuid"]})
        private = site.backend.create(alice, "collections", {"name": "private", "manifest_text": OUTPUT})
        shared = site.backend.create(alice, "collections", {"name": "shared", "owner_uuid": project["uuid"]})
        request = site.backend.create(alice, "container_requests", {**REQUEST, "owner_uuid": project["uuid"]})
        draft = site.backend.create(alice, "container_requests", {**REQUEST, "state": "Uncommitted"})
        site.backend.delete(alice, "container_requests", draft["uuid"])  # a deletion, owned by alice
        run_to_completion(site, request["container_uuid"])
        made.update(project=project["uuid"], private=private["uuid"], shared=shared["uuid"],
                    request=request["uuid"], container=request["container_uuid"], draft=draft["uuid"])
        return {"alice": alice, "bob": bob, "mallory": mallory, "admin": site.admin}

    heard = listen(site, {"alice": alice.token, "bob": bob.token, "mallory": mallory.token,
                          "admin": site.admin.token}, alices_work)
    alices = {made[key] for key in ("project", "private", "shared", "request", "container", "draft")}
    # mallory: not one of alice's objects, nor anything owned by her, nor the container or its token
    assert not heard["mallory"].uuids() & alices
    assert all(e["owner_uuid"] == mallory.user_uuid for e in heard["mallory"].heard), heard["mallory"].heard
    # alice: all of hers, the deletion too, and her container as it changes
    assert alices <= heard["alice"].uuids()
    assert ("container_requests", made["draft"], "delete") in {(e["kind"], e["uuid"], e["event_type"])
                                                               for e in heard["alice"].heard}
    states = [e for e in heard["alice"].heard if e["uuid"] == made["container"]]
    assert len(states) >= 3  # created, locked, running, complete: she follows it without polling
    # bob: what is in the project shared with him once it was (its own creation came before the grant:
    # judged as he could read it then or later), not alice's private collection nor her deletion
    assert {made["shared"], made["request"], made["container"]} <= heard["bob"].uuids()
    assert not {made["private"], made["draft"]} & heard["bob"].uuids()
    # the admin (the dispatcher is one): everything, in order
    assert alices <= heard["admin"].uuids()
    seqs = [e["seq"] for e in heard["admin"].heard]
    assert seqs == sorted(seqs)


def test_the_dispatcher_hears_of_every_container_change(site):
    alice = site.new_user("alice")
    made: list[str] = []

    def work() -> dict[str, Caller]:
        request = site.backend.create(alice, "container_requests", {**REQUEST, "command": ["echo", "dispatch"]})
        made.append(request["container_uuid"])
        run_to_completion(site, request["container_uuid"])
        site.backend.create(alice, "container_requests", {**REQUEST, "command": ["echo", "wake"]})
        return {"admin": site.admin}

    heard = listen(site, {"admin": site.admin.token}, work, kinds="containers,collections")
    changes = [e for e in heard["admin"].heard if e["uuid"] == made[0]]
    assert len(changes) >= 4 and all(e["kind"] == "containers" for e in changes)
    queued = [e for e in heard["admin"].heard if e["kind"] == "containers" and e["event_type"] == "create"]
    assert len(queued) == 2  # each new container wakes it


def test_a_containers_own_token_hears_of_its_container_and_its_child_requests(site):
    alice = site.new_user("alice")
    parent = site.backend.create(alice, "container_requests", {**REQUEST, "command": ["echo", "parent"]})
    cu = parent["container_uuid"]
    site.backend.act(site.admin, "containers", cu, "lock", "POST", {})
    site.backend.update(site.admin, "containers", cu, {"state": "Running"})
    auth = site.backend.act(site.admin, "containers", cu, "auth", "GET", {})
    own = site.backend.authenticate(f"v2/{auth['uuid']}/{auth['api_token']}")
    made: dict[str, str] = {}

    def children() -> dict[str, Caller]:
        child = site.backend.create(own, "container_requests", {**REQUEST, "command": ["echo", "child"]})
        site.backend.update(own, "containers", cu, {"progress": 0.5})
        made.update(child=child["uuid"], child_container=child["container_uuid"])
        return {"own": own}

    heard = listen(site, {"own": own.token}, children)
    assert {made["child"], made["child_container"], cu} <= heard["own"].uuids()


def test_a_scoped_token_hears_only_of_what_its_scopes_let_it_get(site):
    alice = site.new_user("alice")
    collections_only = token(site, alice, scopes=["GET /arvados/v1/events", "GET /arvados/v1/collections/"])
    events_only = token(site, alice, scopes=["GET /arvados/v1/events"])
    no_events = token(site, alice, scopes=["GET /arvados/v1/collections/"])
    made: dict[str, str] = {}

    def work() -> dict[str, Caller]:
        made["request"] = site.backend.create(alice, "container_requests",
                                              {**REQUEST, "command": ["echo", "scoped"]})["uuid"]
        made["collection"] = site.backend.create(alice, "collections", {"name": "in scope"})["uuid"]
        return {"collections": alice}

    heard = listen(site, {"collections": collections_only, "events": events_only, "none": no_events}, work)
    assert made["collection"] in heard["collections"].uuids()
    assert {e["kind"] for e in heard["collections"].heard} == {"collections"}
    assert heard["events"].heard == []
    assert heard["none"].status == 403 and heard["none"].heard == []


def test_a_revoked_token_hears_nothing_more_and_its_stream_ends(site):
    alice = site.new_user("alice")
    doomed = token(site, alice)
    made: dict[str, str] = {}

    def revoke_then_work() -> dict[str, Caller]:
        site.backend.delete(alice, "api_client_authorizations", doomed.split("/")[1])
        made["after"] = site.backend.create(alice, "collections", {"name": "after revocation"})["uuid"]
        return {"doomed": alice}

    heard = listen(site, {"doomed": doomed}, revoke_then_work)
    assert heard["doomed"].ended.is_set()
    assert made["after"] not in heard["doomed"].uuids()


def test_a_made_up_token_gets_no_stream(site):
    heard = listen(site, {"nobody": "v2/z1111-gj3su-000000000000000/not-a-secret"}, dict)
    assert heard["nobody"].status == 401 and heard["nobody"].heard == []
