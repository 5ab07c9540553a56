"""Notebooks next to the data on a real cluster: `archipelago.notebook.start` runs JupyterLab in a
bubblewrap container with a dataset mounted read-only; the lab is reached through the cluster's API
server with the user's token (Authorization, or a ?token= handoff that leaves a cookie), its kernels
too (WebSocket); a notebook written there is saved to the request's output collection when the lab
is stopped, and a lab left idle stops by itself. Refusals: tests/security/test_notebook_proxy.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
import urllib3

from archipelago.notebook import start, stop
from archipelago.notebook.session import wait_ready
from archipelago.sdk import ApiClient, Collection
from tests.support.clusters import new_user
from tests.support.notebooks import available, proxy_base, sqlite_cluster, wait_final

pytestmark = [pytest.mark.integration, available]
http = urllib3.PoolManager(cert_reqs="CERT_NONE", retries=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    yield from sqlite_cluster(tmp_path_factory)


@pytest.fixture(scope="module")
def alice(cluster: Any) -> ApiClient:
    return new_user(ApiClient(cluster.api_url, cluster.admin_token, insecure=True), "alice")


@pytest.fixture(scope="module")
def dataset(alice: ApiClient) -> dict[str, Any]:
    collection = Collection(alice)
    collection.write("cohort.csv", b"id,value\n1,10\n2,20\n")
    return collection.save_new("cohort")


def bearer(client: ApiClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.token}"}


def test_a_notebook_is_used_with_the_token_and_saves_its_notebooks_when_stopped(alice: ApiClient,
                                                                                 dataset: dict) -> None:
    session = start(alice, None, {"/data": dataset["portable_data_hash"]}, idle_minutes=30)
    wait_ready(alice, session, alice.token)
    base = proxy_base(session)
    status = http.request("GET", base + "api/status", headers=bearer(alice))
    assert status.status == 200 and "last_activity" in status.json()
    lab = http.request("GET", session.url, headers=bearer(alice))
    assert lab.status == 200 and b"JupyterLab" in lab.data
    # the dataset is there, read-only; the scratch and the notebooks' directory are writable
    listing = http.request("GET", base + "api/contents", headers=bearer(alice)).json()
    assert {item["name"] for item in listing["content"]} == set()  # /out starts empty
    notebook = {"type": "notebook", "content": {"cells": [{"cell_type": "code", "source": "open('/data/cohort.csv')"
                                                           ".read()", "metadata": {}, "outputs": [],
                                                           "execution_count": None}],
                                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}
    saved = http.request("PUT", base + "api/contents/analysis.ipynb", body=json.dumps(notebook),
                         headers={**bearer(alice), "Content-Type": "application/json"})
    assert saved.status in (200, 201), saved.data
    # a browser: ?token= once, then the cookie alone
    handoff = http.request("GET", session.login_url(alice.token), redirect=False)
    assert handoff.status == 303 and "token=" not in handoff.headers["Location"]
    cookie = handoff.headers["Set-Cookie"].split(";", 1)[0]
    assert "HttpOnly" in handoff.headers["Set-Cookie"] and "SameSite=lax" in handoff.headers["Set-Cookie"]
    assert http.request("GET", base + "api/contents/analysis.ipynb", headers={"Cookie": cookie}).status == 200
    kernel = run_in_kernel(base, alice, "print(open('/data/cohort.csv').read().count('\\n'))")
    assert kernel == "3\n"
    stop(alice, session.request_uuid)
    request = wait_final(alice, session.request_uuid)
    assert request["state"] == "Final" and request["output_uuid"], request
    output = Collection(alice, request["output_uuid"])
    assert "analysis.ipynb" in dict(output.files())
    source = json.loads(output.read("analysis.ipynb"))["cells"][0]["source"]
    assert "".join(source).startswith("open('/data/cohort.csv')")


def run_in_kernel(base: str, client: ApiClient, code: str) -> str:
    """Execute `code` in a new kernel over the proxied WebSocket (as the lab does); its stdout."""
    import asyncio
    import ssl
    import uuid

    import aiohttp

    kernel = http.request("POST", base + "api/kernels", body=b"{}",
                          headers={**bearer(client), "Content-Type": "application/json"}).json()

    async def talk() -> str:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        url = base.replace("https://", "wss://") + f"api/kernels/{kernel['id']}/channels"
        async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=bearer(client),
                                                                          ssl=context) as ws:
            msg_id = uuid.uuid4().hex
            await ws.send_str(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "", "session": msg_id,
                           "version": "5.3"}, "parent_header": {}, "metadata": {}, "channel": "shell",
                "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                            "allow_stdin": False}}))
            out = ""
            async for message in ws:
                data = json.loads(message.data)
                if data.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if data["msg_type"] == "stream":
                    out += data["content"]["text"]
                if data["msg_type"] == "status" and data["content"]["execution_state"] == "idle":
                    return out
            return out

    return asyncio.run(asyncio.wait_for(talk(), 60))


def test_an_idle_notebook_stops_by_itself_and_saves_its_notebooks(alice: ApiClient) -> None:
    session = start(alice, None, {}, idle_minutes=0.5)  # 30 s: ample for the readiness wait and the PUT below
    wait_ready(alice, session, alice.token)
    saved = http.request("PUT", proxy_base(session) + "api/contents/left.ipynb", body=json.dumps(
        {"type": "notebook", "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}),
        headers={**bearer(alice), "Content-Type": "application/json"})
    assert saved.status in (200, 201)
    request = wait_final(alice, session.request_uuid)  # nobody uses it: it stops
    assert request["state"] == "Final" and request["output_uuid"]
    assert "left.ipynb" in dict(Collection(alice, request["output_uuid"]).files())
    log = Collection(alice, request["log_uuid"]).read("stderr.txt").decode()
    assert "idle for 30 s: stopping" in log


def test_the_resolvers_launch_mode_starts_a_notebook_on_the_plans_dataset(alice: ApiClient, dataset: dict) -> None:
    """What `archi launch ID --notebook` uses (resolver/launch.py's mode interface)."""
    from types import SimpleNamespace

    from archipelago.notebook.session import launch_mode

    plan = SimpleNamespace(identifier="doi:10.1234/cohort", site="z1111", pdh=dataset["portable_data_hash"],
                           collection_uuid=dataset["uuid"])
    started = launch_mode(alice, plan, idle_minutes=30)
    assert started["mode"] == "notebook" and started["cluster"] == "z1111"
    request = alice.container_requests.get(started["request"])
    assert request["mounts"]["/data"] == {"kind": "collection", "portable_data_hash": dataset["portable_data_hash"]}
    assert request["name"] == "notebook on doi:10.1234/cohort"
    stopped = stop(alice, started["request"])
    final = wait_final(alice, started["request"])
    container = alice.containers.get(final["container_uuid"]) if final.get("container_uuid") else None
    assert final["state"] == "Final", (stopped, final, container)
