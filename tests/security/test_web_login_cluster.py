"""Logging in to the web UI of a LoginCluster federation's satellite (a real 2-cluster federation):
the satellite sends its users to the login cluster, which hands a fresh token of theirs back in a
posted form, and only to a cluster of the federation; the satellite takes that form from the login
cluster's origin and from no other."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.clusters import new_user, start_federation
from tests.support.web import WebClient

pytestmark = pytest.mark.integration
FIELD = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from archipelago.sdk import ApiClient

    members, processes = start_federation(Path(tmp_path_factory.mktemp("login-federation")), 2, login_cluster=True)
    try:
        yield {m.cluster_id: ApiClient(m.api_url, m.admin_token, insecure=True) for m in members}
    finally:
        for process in processes:
            process.stop()


def fields(html: str) -> dict[str, str]:
    return {name: unescape(value) for name, value in FIELD.findall(html)}


def test_a_satellite_sends_its_users_to_the_login_cluster_and_takes_the_token_it_hands_back(
        federation: dict[str, Any]) -> None:
    login, satellite = federation["z1111"], federation["z2222"]
    user = new_user(login, "lena")
    there = WebClient(satellite.base)
    page = there.get("/login").text
    to_login = f"{login.base}/login?return_to={quote(satellite.base)}"
    assert unescape(re.search(r'href="([^"]+)">Log in at z1111', page).group(1)) == to_login  # type: ignore[union-attr]

    home = WebClient(login.base)
    form = fields(home.get(f"/login?return_to={quote(satellite.base)}").text)
    assert form["return_to"] == satellite.base
    answer = home.post("/login", {"token": user.token, "return_to": satellite.base})
    assert answer.status == 303 and "return_to=" in answer.location
    handoff = fields(home.get(answer.location).text)
    made = home.post("/login/handoff", {"csrf": handoff["csrf"], "return_to": handoff["return_to"]})
    assert made.status == 200
    assert f'action="{satellite.base}/login"' in made.text
    token = fields(made.text)["token"]
    assert token != user.token and token.startswith("v2/z1111-gj3su-")  # a new token of hers, not the session's

    assert there.post("/login", {"token": token}, origin="https://127.0.0.1:1").status == 403  # another origin
    assert not there.cookies
    arrived = there.post("/login", {"token": token, "next": "/data"}, origin=login.base)
    assert arrived.status == 303 and arrived.location == "/data"
    assert user.users.current()["uuid"] in there.get("/data").text


def test_the_login_cluster_hands_no_token_to_a_site_outside_the_federation(federation: dict[str, Any]) -> None:
    login = federation["z1111"]
    user = new_user(login, "lars")
    home = WebClient(login.base)
    assert home.get("/login?return_to=https%3A%2F%2Fevil.example").status == 400
    assert home.post("/login", {"token": user.token, "return_to": "https://evil.example"}).status == 400
    home.login(user.token)
    csrf = home.csrf()
    before = len(user.api_client_authorizations.list()["items"])
    for target in ("https://evil.example", "https://127.0.0.1:1", f"{login.base}.evil.example"):
        assert home.post("/login/handoff", {"csrf": csrf, "return_to": target}).status == 400, target
    assert len(user.api_client_authorizations.list()["items"]) == before  # no token was made
