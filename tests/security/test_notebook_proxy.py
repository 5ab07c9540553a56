"""The notebook proxy attacked on a real cluster with a real JupyterLab: no token, a made-up token,
another tenant's token (in the header, the ?token= handoff, a cookie, a WebSocket), the admin (who
may read the request but is not the user the container runs as), a token scoped away from the
request, paths with `..`, a page of another origin carrying the owner's cookie, and a notebook that has
stopped. The owner's success is checked first."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
import urllib3

from archipelago.notebook import start, stop
from archipelago.notebook.session import wait_ready
from archipelago.sdk import ApiClient
from tests.support.clusters import new_user
from tests.support.notebooks import available, proxy_base, sqlite_cluster, wait_final

pytestmark = [pytest.mark.integration, available]
MADE_UP = "v2/z1111-gj3su-000000000000000/madeupsecret0123456789abcdefghijklmnopqrstuvw"
http = urllib3.PoolManager(cert_reqs="CERT_NONE", retries=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    yield from sqlite_cluster(tmp_path_factory)


@pytest.fixture(scope="module")
def admin(cluster: Any) -> ApiClient:
    return ApiClient(cluster.api_url, cluster.admin_token, insecure=True)


@pytest.fixture(scope="module")
def alice(admin: ApiClient) -> ApiClient:
    return new_user(admin, "alice")


@pytest.fixture(scope="module")
def bob(admin: ApiClient) -> ApiClient:
    return new_user(admin, "bob")


@pytest.fixture(scope="module")
def notebook(alice: ApiClient) -> Any:
    session = start(alice, None, {}, idle_minutes=30)
    wait_ready(alice, session, alice.token)
    yield session
    stop(alice, session.request_uuid)


def get(url: str, token: str | None = None, **headers: str) -> urllib3.BaseHTTPResponse:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return http.request("GET", url, headers=headers, redirect=False)


def test_the_owner_reaches_the_lab(notebook: Any, alice: ApiClient) -> None:
    assert get(proxy_base(notebook) + "api/status", alice.token).status == 200
    assert websocket(proxy_base(notebook), alice.token) == "accepted"


def test_no_token_or_a_made_up_one_is_401(notebook: Any) -> None:
    for url in (proxy_base(notebook) + "api/status", notebook.url, proxy_base(notebook) + "api/contents"):
        assert get(url).status == 401
        assert get(url, MADE_UP).status == 401
        assert get(url, Cookie=f"archi_proxy_token={MADE_UP}").status == 401
    assert http.request("GET", notebook.login_url(MADE_UP), redirect=False).status == 401


def test_another_tenant_is_refused_every_way(notebook: Any, bob: ApiClient) -> None:
    base = proxy_base(notebook)
    assert get(base + "api/status", bob.token).status == 404
    assert get(base + "api/status", Cookie=f"archi_proxy_token={bob.token}").status == 404
    handoff = http.request("GET", notebook.login_url(bob.token), redirect=False)
    assert handoff.status == 404 and "Set-Cookie" not in handoff.headers
    put = http.request("PUT", base + "api/contents/x.ipynb", body=b'{"type": "notebook"}',
                       headers={"Authorization": f"Bearer {bob.token}", "Content-Type": "application/json"})
    assert put.status == 404
    assert websocket(base, bob.token) == "refused"


def test_a_user_who_may_read_the_request_but_did_not_start_it_is_403(notebook: Any, admin: ApiClient) -> None:
    answer = get(proxy_base(notebook) + "api/status", admin.token)
    assert answer.status == 403 and b"only the user" in answer.data
    assert websocket(proxy_base(notebook), admin.token) == "refused"


def test_a_token_scoped_away_from_the_request_is_403(notebook: Any, alice: ApiClient) -> None:
    row = alice.api_client_authorizations.create({"scopes": ["GET /arvados/v1/collections/"]})
    answer = get(proxy_base(notebook) + "api/status", f"v2/{row['uuid']}/{row['api_token']}")
    assert answer.status == 403 and b"scopes" in answer.data


@pytest.mark.parametrize("path", ["../../users/current", "api/../../../collections", "%2e%2e/%2e%2e/x", "./api/status"])
def test_a_path_with_dot_segments_is_400(notebook: Any, alice: ApiClient, path: str) -> None:
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(notebook.url)
    connection = http.client.HTTPSConnection(where.hostname or "", where.port, context=ssl._create_unverified_context())
    connection.request("GET", urlsplit(proxy_base(notebook)).path + path,
                       headers={"Authorization": f"Bearer {alice.token}"})
    assert connection.getresponse().status == 400


@pytest.mark.parametrize("idle", ["nan", "inf", "-1", "0"])
def test_a_notebook_that_would_never_stop_for_idleness_is_refused(cluster: Any, alice: ApiClient, idle: str) -> None:
    """The web UI's form takes the idle time as a number: NaN and infinity passed the check (a lab that
    is never idle enough holds its node until its time limit)."""
    from tests.support.web import WebClient

    web = WebClient(cluster.api_url)
    assert web.login(alice.token).status == 303
    dataset = alice.collections.create({"name": f"idle {idle}", "manifest_text": ""})["uuid"]
    before = len(alice.container_requests.list(limit=1000)["items"])
    answer = web.post("/notebooks", {"csrf": web.csrf("/notebooks"), "dataset": dataset, "idle": idle})
    assert answer.status == 422 and "idle" in answer.text
    assert len(alice.container_requests.list(limit=1000)["items"]) == before


def test_a_stopped_notebook_is_unavailable(alice: ApiClient) -> None:
    session = start(alice, None, {}, idle_minutes=30)
    wait_ready(alice, session, alice.token)
    stop(alice, session.request_uuid)
    assert wait_final(alice, session.request_uuid)["state"] == "Final"
    answer = get(proxy_base(session) + "api/status", alice.token)
    assert answer.status == 503 and b"not Running" in answer.data


def test_the_web_uis_open_puts_a_token_for_this_notebook_alone_in_the_url(cluster: Any, notebook: Any,
                                                                         alice: ApiClient) -> None:
    """The lab's URL carries a token (a browser's history keeps it, and the proxy's cookie): not the
    session's token (before: the token she logged in with, valid everywhere, for as long as it lives)."""
    from urllib.parse import parse_qs, urlsplit

    from tests.support.web import WebClient

    web = WebClient(cluster.api_url)
    assert web.login(alice.token).status == 303
    answer = web.post(f"/notebooks/{notebook.request_uuid}/open", {"csrf": web.csrf("/notebooks")})
    assert answer.status == 303 and answer.location.startswith(notebook.url)
    handed = parse_qs(urlsplit(answer.location).query)["token"][0]
    assert handed != alice.token
    assert get(proxy_base(notebook) + "api/status", handed).status == 200  # it opens the lab
    record = get(cluster.api_url + "/arvados/v1/api_client_authorizations/current", handed).json()
    assert record["scopes"] == [f"GET /arvados/v1/container_requests/{notebook.request_uuid}",
                                "GET /arvados/v1/users/current"]  # what a visitor's cluster asks her home
    assert record["expires_at"]
    for path in ("/arvados/v1/collections", "/arvados/v1/groups", "/arvados/v1/container_requests"):
        assert get(cluster.api_url + path, handed).status == 403, path
    assert web.get("/data", Cookie=f"archi_session_z1111={handed}").status == 303  # no web UI session either


def handed_cookie(notebook: Any, client: ApiClient) -> str:
    """The proxy's cookie, as a browser keeps it after the ?token= handoff."""
    return http.request("GET", notebook.login_url(client.token), redirect=False).headers["Set-Cookie"].split(";")[0]


def kernels(notebook: Any, client: ApiClient) -> list[str]:
    return [k["id"] for k in get(proxy_base(notebook) + "api/kernels", client.token).json()]


def test_a_page_of_another_origin_cannot_use_the_notebook_through_its_cookie(notebook: Any, alice: ApiClient) -> None:
    """Another port of the same host (or a sibling host) is the same site: the SameSite=Lax cookie goes with
    its POSTs and WebSockets, so the proxy must judge where they come from."""
    base, cookie, before = proxy_base(notebook), handed_cookie(notebook, alice), kernels(notebook, alice)
    for origin in ("https://127.0.0.1:1", "null", notebook.url.replace("https://", "http://").split("/arvados")[0]):
        answer = http.request("POST", base + "api/kernels", body=b"{}", headers={
            "Cookie": cookie, "Origin": origin, "Content-Type": "application/json"})
        assert answer.status == 403 and b"only its own pages" in answer.data, (origin, answer.status)
        assert websocket(base, None, Cookie=cookie, Origin=origin) == "refused"
    assert kernels(notebook, alice) == before


def test_the_labs_own_pages_start_kernels_and_open_websockets(notebook: Any, alice: ApiClient) -> None:
    """As a browser sends them, with the page's Origin (before, the lab compared it with the Host the proxy
    gave it and refused them all: a lab in a browser could not start a kernel)."""
    base, cookie = proxy_base(notebook), handed_cookie(notebook, alice)
    own = notebook.url.split("/arvados/")[0]
    answer = http.request("POST", base + "api/kernels", body=b"{}", headers={
        "Cookie": cookie, "Origin": own, "Content-Type": "application/json"})
    assert answer.status == 201, answer.data
    assert websocket(base, None, Cookie=cookie, Origin=own) == "accepted"
    assert http.request("DELETE", base + f"api/kernels/{answer.json()['id']}", headers={
        "Cookie": cookie, "Origin": own}).status == 204


def websocket(base: str, token: str | None, **headers: str) -> str:
    """Whether the proxy lets a WebSocket through to the lab ("accepted") or refuses the handshake."""
    import aiohttp

    if token:
        headers["Authorization"] = f"Bearer {token}"

    async def attempt() -> str:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        url = base.replace("https://", "wss://") + "api/events/subscribe"
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(url, headers=headers, ssl=context):
                    return "accepted"
            except aiohttp.WSServerHandshakeError:
                return "refused"

    return asyncio.run(asyncio.wait_for(attempt(), 30))
