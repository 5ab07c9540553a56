"""The web UI attacked on a real cluster (SQLite and PostgreSQL): it must never be a side door.
A stranger (no session, a made-up or a narrowly scoped token), a tenant naming another user's
project, collection, file and run by UUID, forms sent from another origin or without their CSRF
token, markup in collection, project and file names, and `..` in file paths. Each refusal is paired
with the owner's success where one exists."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from archipelago.cwl.tags import RUN, STEP, new_run_id
from archipelago.sdk import ApiClient, Collection
from tests.support.clusters import new_user
from tests.support.web import WebClient

pytestmark = pytest.mark.integration
MADE_UP = "v2/z1111-gj3su-000000000000000/madeupsecret0123456789abcdefghijklmnopqrstuvw"
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
WEB = Path(__file__).resolve().parents[2] / "src" / "archipelago" / "web"


@pytest.fixture(scope="module")
def admin(cluster: Any) -> ApiClient:
    return ApiClient(cluster.api_url, cluster.admin_token, insecure=True)


@pytest.fixture(scope="module")
def ana(admin: ApiClient) -> ApiClient:
    return new_user(admin, "ana")


@pytest.fixture(scope="module")
def bob(admin: ApiClient) -> ApiClient:
    return new_user(admin, "bob")


@pytest.fixture(scope="module")
def owned(ana: ApiClient) -> dict[str, Any]:
    """Ana's private project, a collection in it with hostile names, and a run of hers."""
    project = ana.groups.create({"name": f"project {XSS}", "group_class": "project"})
    collection = Collection(ana)
    collection.write("table.csv", b"a,b\n1,2\n")
    collection.write(f"dir/{XSS}.txt", b"<script>alert('content')</script>\n")
    collection.write("page.html", b"<html><script>alert('html')</script></html>")
    collection.write("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    record = collection.save_new(f"cohort {XSS}", owner_uuid=project["uuid"])
    run_id = new_run_id("z1111")
    request = ana.container_requests.create({
        "name": f"step {XSS}", "command": ["true"], "output_path": "/out", "container_image": None,
        "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 20}}, "runtime_constraints": {"ram": 1 << 26, "vcpus": 1},
        "properties": {RUN: run_id, STEP: f"step {XSS}"}, "state": "Uncommitted"})
    notebook = ana.container_requests.create({  # as archipelago.notebook makes one (not started here)
        "name": "notebook", "command": ["true"], "output_path": "/out", "container_image": None,
        "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 20}}, "runtime_constraints": {"ram": 1 << 26, "vcpus": 1},
        "properties": {"type": "archi-notebook"}, "state": "Uncommitted"})
    return {"project": project["uuid"], "collection": record["uuid"], "pdh": record["portable_data_hash"],
            "run": run_id, "request": request["uuid"], "notebook": notebook["uuid"]}


def logged_in(cluster: Any, client: ApiClient) -> WebClient:
    web = WebClient(cluster.api_url)
    answer = web.login(client.token)
    assert answer.status == 303 and answer.location == "/data", answer.text
    return web


def pages(o: dict[str, Any]) -> list[str]:
    c, r = o["collection"], o["run"]
    return ["/data", f"/projects/{o['project']}", f"/collections/{c}", f"/collections/{o['pdh']}",
            f"/collections/{c}/files/table.csv", "/search?q=cohort", "/runs", f"/runs/{r}",
            f"/runs/{r}/steps/{o['request']}", f"/requests/{o['request']}", f"/processes/{o['request']}", "/movement",
            "/sites", "/notebooks"]


def scripted(o: dict[str, Any]) -> list[str]:
    """What pages' scripts fetch (answered in JSON or text, never with a login page)."""
    c, r = o["collection"], o["run"]
    return [f"/collections/{c}/preview/table.csv", f"/collections/{c}/download/table.csv", f"/runs/{r}/live",
            f"/runs/{r}/steps/{o['request']}/log/stderr.txt"]


def posts(o: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    c, r = o["collection"], o["run"]
    return [("/share", {"object": c, "who": "someone", "level": "can_read"}), ("/collections", {"name": "x"}),
            (f"/collections/{c}/blocks", {}), (f"/collections/{c}/files", {}), (f"/runs/{r}/cancel", {}),
            (f"/runs/{r}/rerun", {}), ("/logout", {}), ("/login/handoff", {"return_to": "https://evil.example"}),
            ("/notebooks", {"dataset": c}), (f"/notebooks/{o['notebook']}/open", {}),
            (f"/notebooks/{o['notebook']}/stop", {})]


def test_a_stranger_is_sent_to_log_in_and_gets_nothing(cluster: Any, owned: dict[str, Any]) -> None:
    stranger = WebClient(cluster.api_url)
    for path in pages(owned):
        answer = stranger.get(path)
        assert answer.status == 303 and answer.location.startswith("/login?next="), path
        assert owned["collection"] not in answer.text
    for path in scripted(owned):
        answer = stranger.get(path)
        assert answer.status == 401, path
        assert b"alert" not in answer.body
    for path, fields in posts(owned):
        assert stranger.post(path, fields).status == 401, path
    stranger.cookies[f"archi_session_{cluster.config.cluster_id}"] = MADE_UP  # a forged cookie is no session
    assert stranger.get("/data").status == 303


def test_a_made_up_or_narrow_token_does_not_log_in(cluster: Any, admin: ApiClient, ana: ApiClient) -> None:
    web = WebClient(cluster.api_url)
    answer = web.login(MADE_UP)
    assert answer.status == 401 and "not valid" in answer.text and not web.cookies
    narrow = ana.api_client_authorizations.create({"scopes": ["GET /arvados/v1/collections/"]})
    answer = web.login(f"v2/{narrow['uuid']}/{narrow['api_token']}")
    assert answer.status == 403 and "scope" in answer.text and not web.cookies
    assert web.login("").status == 400


def test_the_session_cookie_is_httponly_secure_strict_and_this_clusters_own(cluster: Any, ana: ApiClient) -> None:
    web = WebClient(cluster.api_url)
    answer = web.login(ana.token)
    (cookie,) = answer.cookies
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
    assert cookie.startswith(f"archi_session_{cluster.config.cluster_id}=")
    assert web.get("/data").status == 200
    assert web.post("/logout", {"csrf": web.csrf()}).status == 303 and not web.cookies
    assert web.get("/data").status == 303


def test_another_tenant_cannot_reach_a_private_project_collection_file_or_run(
        cluster: Any, ana: ApiClient, bob: ApiClient, owned: dict[str, Any]) -> None:
    mine, theirs = logged_in(cluster, ana), logged_in(cluster, bob)
    for path in [p for p in pages(owned) if owned["collection"] in p or owned["project"] in p or owned["run"] in p
                 or owned["request"] in p or owned["pdh"] in p]:
        assert mine.get(path).status in (200, 303), path  # a request by UUID: to its run's step page
        answer = theirs.get(path)
        assert answer.status == 404, (path, answer.status)
        assert "alert" not in answer.text and "cohort" not in answer.text and "table.csv" not in answer.text, path
    for path in scripted(owned):
        assert theirs.get(path).status == 404, path
    assert mine.get(f"/collections/{owned['collection']}/download/table.csv").body == b"a,b\n1,2\n"
    for page in ("/data", "/search?q=cohort", "/runs"):  # not listed either
        text = theirs.get(page).text
        assert owned["collection"] not in text and owned["project"] not in text and owned["run"] not in text
    csrf = theirs.csrf()
    bob_uuid = bob.users.current()["uuid"]
    for path, fields in posts(owned):
        if path in ("/collections", "/logout", "/login/handoff") or path.startswith(("/collections/", "/notebooks")):
            continue  # their own; the upload and notebook endpoints are tried below with well-formed bodies
        answer = theirs.post(path, {**fields, "csrf": csrf, "who": bob_uuid}) if path == "/share" else \
            theirs.request("POST", path, b"{}", Origin=theirs.base, Content_Type="application/json", X_CSRF_Token=csrf)
        assert answer.status in (403, 404), (path, answer.status, answer.text[:200])
    for action, owners in (("open", 503), ("stop", 303)):  # hers never started: nothing to open
        assert mine.post(f"/notebooks/{owned['notebook']}/{action}", {"csrf": mine.csrf()}).status == owners, action
        assert theirs.post(f"/notebooks/{owned['notebook']}/{action}", {"csrf": csrf}).status == 404, action
    assert owned["notebook"] not in theirs.get("/notebooks").text
    assert theirs.post("/notebooks", {"dataset": owned["collection"], "csrf": csrf}).status == 404  # not hers to mount
    share = theirs.post("/share", {"object": owned["collection"], "who": bob_uuid, "level": "can_manage",
                                   "csrf": csrf})
    assert share.status in (403, 404)
    assert ana.links.list([["head_uuid", "=", owned["collection"]]])["items"] == []
    added = theirs.request("POST", f"/collections/{owned['collection']}/files",
                           json.dumps({"path": "x.txt", "size": 0, "locators": []}).encode(), Origin=theirs.base,
                           Content_Type="application/json", X_CSRF_Token=csrf)
    assert added.status == 404
    piece = theirs.request("POST", f"/collections/{owned['collection']}/blocks", b"bytes", Origin=theirs.base,
                           Content_Type="application/octet-stream", X_CSRF_Token=csrf)
    assert piece.status == 404


def test_forms_from_another_origin_or_without_their_csrf_token_are_refused(
        cluster: Any, ana: ApiClient, admin: ApiClient, owned: dict[str, Any]) -> None:
    """Another port of the same host is the same site: the cookie goes along, so the CSRF token and
    the Origin header are what refuse a forged form."""
    web = logged_in(cluster, ana)
    csrf = web.csrf()
    carol = new_user(admin, "carol").users.current()
    share = {"object": owned["collection"], "who": carol["uuid"], "level": "can_read"}
    evil = "https://127.0.0.1:1"
    assert web.post("/share", share).status == 403  # no token
    assert web.post("/share", {**share, "csrf": "0" * 40}).status == 403  # a wrong one
    assert web.post("/share", {**share, "csrf": csrf}, origin=evil).status == 403  # the right one, from elsewhere
    assert web.post("/share", {**share, "csrf": csrf}, Sec_Fetch_Site="cross-site",
                    Origin="").status == 403
    other = logged_in(cluster, admin)
    assert web.post("/share", {**share, "csrf": other.csrf()}).status == 403  # another session's token
    blocks = f"/collections/{owned['collection']}/blocks"
    assert web.request("POST", blocks, b"x", Origin=evil, X_CSRF_Token=csrf).status == 403
    assert web.request("POST", blocks, b"x", Origin=web.base).status == 403
    assert ana.links.list([["head_uuid", "=", owned["collection"]]])["items"] == []
    assert web.post("/share", {**share, "csrf": csrf}).status == 303  # the page's own form works
    assert len(ana.links.list([["head_uuid", "=", owned["collection"]]])["items"]) == 1
    assert web.post("/login", {"token": ana.token}, origin=evil).status == 403  # no login forced from elsewhere


def test_names_are_text_never_markup_and_no_inline_script_may_run(cluster: Any, ana: ApiClient,
                                                                   owned: dict[str, Any]) -> None:
    web = logged_in(cluster, ana)
    c = owned["collection"]
    for path in [*pages(owned), f"/collections/{c}?dir=dir", f"/collections/{c}/files/dir/{escaped_path(XSS)}.txt",
                 f"/runs/{owned['run']}?part=body"]:
        answer = web.get(path)
        assert answer.status in (200, 303), path
        assert "<script>alert" not in answer.text and "<img src=x" not in answer.text, path
        if answer.status == 303:
            continue
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in web.get(f"/collections/{c}").text
    assert not re.search(r"<script>(?!</script>)", web.get(f"/collections/{c}").text)  # only <script src=…>


def test_downloads_are_attachments_and_previews_only_images(cluster: Any, ana: ApiClient,
                                                            owned: dict[str, Any]) -> None:
    web = logged_in(cluster, ana)
    c = owned["collection"]
    html = web.get(f"/collections/{c}/download/page.html")
    assert html.status == 200 and html.headers["content-disposition"].startswith("attachment")
    assert html.headers["content-type"] == "application/octet-stream" and "sandbox" in html.headers[
        "content-security-policy"]
    ranged = web.get(f"/collections/{c}/download/table.csv", Range="bytes=2-4")
    assert ranged.status == 206 and ranged.body == b"b\n1"
    for name in ("drawing.svg", "page.html", "table.csv"):
        assert web.get(f"/collections/{c}/preview/{name}").status == 404, name


def escaped_path(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


@pytest.mark.parametrize("path", ["/collections/{c}/files/%2e%2e/%2e%2e/etc/passwd",
                                  "/collections/{c}/files/dir/../table.csv",
                                  "/collections/{c}/files/dir/%2E%2E/table.csv", "/collections/{c}/files/a//b",
                                  "/collections/{c}/download/dir/../table.csv", "/collections/{c}/download/..",
                                  "/collections/{c}/preview/../x.png", "/collections/{c}?dir=..",
                                  "/collections/{c}?dir=dir/../..", "/collections/{c}/files/dir%5c..%5ctable.csv",
                                  "/collections/{c}/files/a%00b"])
def test_dot_dot_in_a_file_path_is_refused(cluster: Any, ana: ApiClient, owned: dict[str, Any], path: str) -> None:
    web = logged_in(cluster, ana)
    answer = web.get(path.replace("{c}", owned["collection"]))
    assert answer.status == 400, (path, answer.status, answer.text[:300])
    assert "a,b" not in answer.text


def test_the_web_ui_never_touches_the_database() -> None:
    """A client of the Backend (the API's permissions), never of the database: no module of web/
    imports the models, sessions, units of work or SQLAlchemy."""
    for path in WEB.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert "sqlalchemy" not in name and not re.search(r"db\.(models|session|unit)|^\.\.db$", name), \
                    (path.name, name)


def test_a_share_names_a_group_she_can_see_or_any_uuid(cluster: Any, admin: ApiClient, ana: ApiClient) -> None:
    group = admin.groups.create({"name": f"analysts-{ana.users.current()['uuid'][-6:]}", "group_class": "role"})
    admin.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": ana.users.current()["uuid"],
                        "head_uuid": group["uuid"]})  # a member sees the group, so may name it
    record = Collection(ana)
    record.write("x.txt", b"x")
    collection = record.save_new("to share")["uuid"]
    web = logged_in(cluster, ana)
    csrf = web.csrf()
    made = web.post("/share", {"object": collection, "who": group["name"], "level": "can_write", "csrf": csrf})
    assert made.status == 303
    (link,) = ana.links.list([["head_uuid", "=", collection]])["items"]
    assert (link["tail_uuid"], link["name"]) == (group["uuid"], "can_write")
    assert web.post("/share", {"object": collection, "who": "nobody-at-all", "level": "can_read",
                               "csrf": csrf}).status == 422
    assert web.post("/share", {"object": collection, "who": group["name"], "level": "can_own",
                               "csrf": csrf}).status == 422
    hidden = admin.groups.create({"name": f"hidden-{group['uuid'][-6:]}", "group_class": "role"})
    assert web.post("/share", {"object": collection, "who": hidden["name"], "level": "can_read",
                               "csrf": csrf}).status == 422  # a group she cannot see is not found by its name
    assert web.post("/share", {"object": collection, "who": hidden["uuid"], "level": "can_read",
                               "csrf": csrf}).status == 303  # by UUID, as in the API
