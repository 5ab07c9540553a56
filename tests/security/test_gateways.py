"""An attacker against gateways (issue 17, defects 5, 6 and 11). Gateways have owners: registering data
(and storing blocks moved to a gateway) needs a token the cluster validates and can_write on the
gateway; names and redirects never leave a web gateway's base URL, nor files a path gateway's root;
a gateway under a residency policy serves nothing to readers outside the cluster; and where a
gateway's data lies is shown only to those who may register through it. In process: the cluster's
engine and API app, the gateways and web servers on loopback threads."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from archipelago.api.app import create_app
from archipelago.backend.interface import Caller
from archipelago.config import GatewayConfig
from archipelago.db.models import Collection, GatewayBlock
from archipelago.errors import ArchipelagoError, BadRequest
from archipelago.formats.signing import sign_locator
from archipelago.gateway.service import Gateway
from archipelago.gateway.stores import PathStore
from archipelago.keep.cache import BlockCache
from archipelago.keepstore.app import ServerThread
from archipelago.keepstore.remote_blocks import CLUSTER_HEADER
from archipelago.run.ports import free_port
from archipelago.sdk.gateway import register as sdk_register
from tests.support.backends import Site, cluster_config, federation, local_backend
from tests.support.http_ranges import RangeHandler
from tests.support.keep_http import http

PATH_GW, WEB_GW = "z1111-bi6l4-gateway00000000", "z1111-bi6l4-gateway00000001"
STAYS_GW = "z1111-bi6l4-gateway00000002"  # residency: cluster
MADE_UP = "v2/z1111-gj3su-000000000madeup/madeupsecret0123456789abcdefghijklmnopqrstu"
SECRET = b"outside the base URL: never served\n"


# ---------------------------------------------------------------------------- web servers
class Web(RangeHandler):
    """The web server behind the HTTP gateway: serves `root` (base_url is its /public), answers
    the redirects the test sets, and remembers every path asked."""

    redirects: ClassVar[dict[str, str]] = {}
    asked: ClassVar[list[str]] = []

    def _redirected(self) -> bool:
        self.asked.append(self.path)
        if (location := self.redirects.get(self.path)) is None:
            return False
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def do_GET(self) -> None:
        if not self._redirected():
            super().do_GET()

    def do_HEAD(self) -> None:
        if not self._redirected():
            super().do_HEAD()


class Outside(BaseHTTPRequestHandler):
    """What a redirect must not reach (the cluster's keepstore on loopback, say): counts its visitors."""

    asked: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.asked.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(SECRET)))
        self.end_headers()
        self.wfile.write(SECRET)

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(handler: Any) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


# ---------------------------------------------------------------------------- the cluster
@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """One cluster with a path gateway, an HTTP gateway (base_url: the web server's /public) and a
    path gateway under a residency policy, each on its own port (listed in keep_services)."""
    base = tmp_path_factory.mktemp("gateways")
    data, web, stays = base / "data", base / "web", base / "stays"
    for directory in (data, web / "public", stays):
        directory.mkdir(parents=True)
    (web / "private").write_bytes(SECRET)  # beside base_url, not below it
    (web / "public" / "ok.txt").write_bytes(b"below the base URL\n")
    with serving(partial(Web, directory=str(web))) as web_url, serving(Outside) as outside_url:
        ports = [free_port() for _ in range(3)]
        gateways = [
            GatewayConfig(driver="path", root=data, listen=f"127.0.0.1:{ports[0]}", uuid=PATH_GW),
            GatewayConfig(driver="http", base_url=f"{web_url}/public", listen=f"127.0.0.1:{ports[1]}", uuid=WEB_GW),
            GatewayConfig(driver="path", root=stays, listen=f"127.0.0.1:{ports[2]}", uuid=STAYS_GW,
                          residency="cluster"),
        ]
        config = cluster_config("z1111", base).model_copy(update={"gateways": gateways})
        local = local_backend(config)
        cluster = Site("z1111", local, local, local.authenticate(config.system_root_token))
        cluster.apps["self"] = create_app(config, local)
        services = {g.uuid: Gateway(config, g, local.db.session, local.restricted_blocks,
                                    registrant=local.gateway_registrant) for g in gateways}
        with ServerThread(services[PATH_GW].app(), port=ports[0]) as path_gw, \
                ServerThread(services[WEB_GW].app(), port=ports[1]) as web_gw, \
                ServerThread(services[STAYS_GW].app(), port=ports[2]) as stays_gw:
            yield {"site": cluster, "data": data, "web": web, "stays": stays, "web_url": web_url,
                   "outside": outside_url, "services": services,
                   "url": {PATH_GW: path_gw.url, WEB_GW: web_gw.url, STAYS_GW: stays_gw.url}}


def post_register(url: str, token: str | None, path: str) -> Any:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return http.request("POST", f"{url}/register", body=json.dumps({"path": path}).encode(), headers=auth)


def registered(url: str, token: str, path: str) -> dict[str, Any]:
    answer = post_register(url, token, path)
    assert answer.status == 200, answer.data
    final = json.loads(answer.data.splitlines()[-1])
    assert "manifest_text" in final, final
    return final


def grant(site: Site, tail_uuid: str, gateway_uuid: str) -> None:
    site.local.create(site.admin, "links", {"link_class": "permission", "name": "can_write",
                                            "tail_uuid": tail_uuid, "head_uuid": gateway_uuid})


def mapped_objects(site: Site, gateway_uuid: str) -> set[str]:
    with site.local.db.session() as session:
        return set(session.scalars(select(GatewayBlock.object).where(GatewayBlock.gateway_uuid == gateway_uuid)))


def errors(answer: Any) -> str:
    return " ".join(json.loads(answer.data)["errors"])


# ---------------------------------------------------------------------------- defect 5: who registers
def test_a_made_up_token_registers_nothing(site) -> None:
    cluster, url = site["site"], site["url"][PATH_GW]
    (site["data"] / "restricted.txt").write_text("an admin's data\n")
    not_federated = "v2/z9999-gj3su-000000000madeup/madeupsecret0123456789abcdefghijklmnopqrstu"
    for token in (None, MADE_UP, not_federated, "not-even-a-v2-token"):
        answer = post_register(url, token, "restricted.txt")
        assert answer.status == 401, (token, answer.data)
    assert "restricted.txt" not in mapped_objects(cluster, PATH_GW)  # refused before anything was read


def test_a_user_without_the_grant_is_told_which_gateway_and_how_to_be_granted(site) -> None:
    cluster, url = site["site"], site["url"][PATH_GW]
    (site["data"] / "theirs.txt").write_text("not yours\n")
    mallory = cluster.new_user("mallory")
    refused = post_register(url, mallory.token, "theirs.txt")
    assert refused.status == 403
    message = errors(refused)
    assert PATH_GW in message and "can_write" in message and "admin" in message
    assert "theirs.txt" not in mapped_objects(cluster, PATH_GW)
    # nor can they grant it to themselves: a gateway is owned by the system user
    with pytest.raises(ArchipelagoError) as info:
        cluster.local.create(mallory, "links", {"link_class": "permission", "name": "can_write",
                                                "tail_uuid": mallory.user_uuid, "head_uuid": PATH_GW})
    assert info.value.status == 403
    # and a grant on a gateway that does not exist is refused
    with pytest.raises(ArchipelagoError) as info:
        grant(cluster, mallory.user_uuid, "z1111-bi6l4-gateway00000099")
    assert info.value.status == 422


def test_a_grant_directly_or_through_a_role_group_lets_a_user_register(site) -> None:
    cluster, url = site["site"], site["url"][PATH_GW]
    (site["data"] / "cohort.csv").write_text("a,b\n1,2\n")
    alice, bob = cluster.new_user("alice"), cluster.new_user("bob")
    grant(cluster, alice.user_uuid, PATH_GW)
    assert f"+K@{PATH_GW}" in registered(url, alice.token, "cohort.csv")["manifest_text"]
    assert post_register(url, bob.token, "cohort.csv").status == 403
    curators = cluster.local.create(cluster.admin, "groups", {"name": "curators", "group_class": "role"})
    cluster.local.create(cluster.admin, "links", {"link_class": "permission", "name": "can_read",
                                                  "tail_uuid": bob.user_uuid, "head_uuid": curators["uuid"]})
    grant(cluster, curators["uuid"], PATH_GW)
    assert f"+K@{PATH_GW}" in registered(url, bob.token, "cohort.csv")["manifest_text"]
    # a grant on one gateway is not a grant on another
    assert post_register(site["url"][WEB_GW], bob.token, "ok.txt").status == 403


def test_a_token_limited_in_scope_cannot_register(site) -> None:
    cluster, url = site["site"], site["url"][PATH_GW]
    (site["data"] / "scoped.txt").write_text("x\n")
    carol = cluster.new_user("carol")
    grant(cluster, carol.user_uuid, PATH_GW)
    scoped = cluster.local.create_token(carol.user_uuid, ["GET /arvados/v1/collections"])
    assert post_register(url, scoped, "scoped.txt").status == 403


def test_a_made_up_token_stores_no_block(site) -> None:
    cluster, url = site["site"], site["url"][PATH_GW]
    md5 = "acbd18db4cc2f85cedef654fccc4a4d8"  # of b"foo"
    dave = cluster.new_user("dave")
    for token, status in ((None, 401), (MADE_UP, 401), (dave.token, 403)):
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        assert http.request("PUT", f"{url}/{md5}", body=b"foo", headers=auth).status == status
    assert not (site["data"] / "archipelago-blocks" / md5).exists()
    grant(cluster, dave.user_uuid, PATH_GW)
    stored = http.request("PUT", f"{url}/{md5}", body=b"foo", headers={"Authorization": f"Bearer {dave.token}"})
    assert stored.status == 200 and f"+K@{PATH_GW}+A" in stored.data.decode()


def test_the_collection_is_the_registrants_never_in_a_project_they_cannot_write(site) -> None:
    cluster = site["site"]
    (site["data"] / "mine").mkdir()
    (site["data"] / "mine" / "m.txt").write_text("mine\n")
    victim, attacker = cluster.new_user("victim"), cluster.new_user("attacker")
    grant(cluster, attacker.user_uuid, PATH_GW)
    project = cluster.local.create(victim, "groups", {"name": "victim's", "group_class": "project"})
    client = cluster.client(attacker)
    with pytest.raises(ArchipelagoError) as info:
        sdk_register(client, "mine", PATH_GW, project=project["uuid"])
    assert info.value.status == 403
    with cluster.local.db.session() as session:
        assert session.scalars(select(Collection).where(Collection.owner_uuid == project["uuid"])).first() is None
    made = sdk_register(client, "mine", PATH_GW)
    assert made["owner_uuid"] == attacker.user_uuid


# ---------------------------------------------------------------------------- defect 6: ways out
WAYS_OUT = ["%2e%2e/private", "..%2fprivate", "%2E%2E/private", "%2E%2e/private", "a/%2e%2e/%2e%2e/private",
            "../private", "ok.txt/../../private", "%2e%2e%5cprivate", "..\\private", "ok.txt\x00",
            "ok.txt%00", "ok.txt%0a", "ok.txt?/../../private", "ok.txt%3f/../../private",
            "ok.txt#/../../private", "%252e%252e/private", "..;/private", "%2e%2e%3b/private", "a/%ff/x"]


@pytest.mark.parametrize("name", WAYS_OUT)
def test_a_name_leading_out_of_the_base_url_is_refused_and_nothing_is_asked(site, name: str) -> None:
    cluster, url = site["site"], site["url"][WEB_GW]
    Web.asked.clear()
    answer = post_register(url, cluster.admin.token, name)
    assert answer.status == 400, answer.data  # refused before the answer streams: nothing was read
    assert Web.asked == []  # the web server was not even asked
    assert not {o for o in mapped_objects(cluster, WEB_GW) if "private" in o or "\x00" in o}


def test_the_url_fetched_is_the_one_checked(site) -> None:
    """What reaches the web server is the decoded name re-encoded: a name with an encoded space or
    a doubled slash reads the same object, and nothing else."""
    cluster, url = site["site"], site["url"][WEB_GW]
    (site["web"] / "public" / "two words.txt").write_bytes(b"spaced\n")
    Web.asked.clear()
    manifest = registered(url, cluster.admin.token, "two%20words.txt")["manifest_text"]
    assert Web.asked and set(Web.asked) == {"/public/two%20words.txt"}
    locator = manifest.split()[1]
    site["services"][WEB_GW].cache = BlockCache(0)
    assert http.request("GET", f"{url}/{locator}", headers={"Authorization": f"Bearer {cluster.admin.token}"}
                        ).data == b"spaced\n"


def test_a_redirect_is_followed_only_below_the_base_url(site) -> None:
    cluster, url, web_url = site["site"], site["url"][WEB_GW], site["web_url"]
    Web.redirects = {
        "/public/to-keepstore": f"{site['outside']}/secret",  # another service on loopback
        "/public/to-private": "/private",
        "/public/encoded-up": "/public/%2e%2e/private",
        "/public/relative-up": "../private",
        "/public/other-host": f"http://localhost:{web_url.rsplit(':', 1)[1]}/public/ok.txt",
        "/public/with-query": "/public/ok.txt?x=1",
        "/public/inside": "/public/ok.txt",
    }
    Outside.asked.clear()
    try:
        for name in ("to-keepstore", "to-private", "encoded-up", "relative-up", "other-host", "with-query"):
            answer = post_register(url, cluster.admin.token, name)
            assert answer.status == 502 and "not followed" in errors(answer), (name, answer.data)
        assert Outside.asked == [] and "/private" not in Web.asked
        assert not mapped_objects(cluster, WEB_GW) & {"to-keepstore", "to-private", "encoded-up", "relative-up"}
        inside = registered(url, cluster.admin.token, "inside")["manifest_text"]  # stays below: followed
        assert "+K@" in inside
    finally:
        Web.redirects = {}


def test_a_redirect_appearing_after_registration_is_not_followed_when_reading(site) -> None:
    cluster, url = site["site"], site["url"][WEB_GW]
    (site["web"] / "public" / "later.txt").write_bytes(b"x" * len(SECRET))  # as long as the secret
    locator = registered(url, cluster.admin.token, "later.txt")["manifest_text"].split()[1]
    Web.redirects = {"/public/later.txt": f"{site['outside']}/secret"}
    Outside.asked.clear()
    site["services"][WEB_GW].cache = BlockCache(0)  # a fresh read from the store
    try:
        answer = http.request("GET", f"{url}/{locator}", headers={"Authorization": f"Bearer {cluster.admin.token}"})
    finally:
        Web.redirects = {}
    assert answer.status == 502 and SECRET not in answer.data and Outside.asked == []


def test_a_symlink_out_of_the_root_is_neither_registered_nor_read(site, tmp_path: Path) -> None:
    cluster, url, data = site["site"], site["url"][PATH_GW], site["data"]
    (tmp_path / "secret").write_bytes(SECRET)
    (data / "links").mkdir()
    (data / "links" / "fine.txt").write_text("fine\n")
    (data / "links" / "passwd").symlink_to("/etc/passwd")
    (data / "links" / "secret").symlink_to(tmp_path / "secret")
    (data / "inside-link").symlink_to(data / "links" / "fine.txt")  # inside the root: followed
    for name in ("links/passwd", "links/secret", "links", "links/fine.txt\x00/../../../etc/passwd"):
        answer = post_register(url, cluster.admin.token, name)
        assert answer.status == 400 and any(w in errors(answer) for w in ("outside", "leading out", "NUL")), answer.data
    assert not any(o.startswith("links") for o in mapped_objects(cluster, PATH_GW))
    assert "+K@" in registered(url, cluster.admin.token, "inside-link")["manifest_text"]


def test_a_symlink_swapped_in_after_the_check_is_not_followed(tmp_path: Path) -> None:
    """The race: a name checked (resolved inside the root), then a directory on its way replaced by
    a symlink out of the root before the open. The open goes one component at a time without
    following links, so it fails instead of reading the file outside."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "dir").mkdir(parents=True)
    outside.mkdir()
    (root / "dir" / "x.txt").write_bytes(b"inside\n")
    (outside / "x.txt").write_bytes(SECRET[:7])  # same size and mtime: the version check cannot tell
    os.utime(outside / "x.txt", ns=(0, (root / "dir" / "x.txt").stat().st_mtime_ns))
    store = PathStore(root)
    version = next(store.objects("dir/x.txt")).version
    checked = store._path("dir/x.txt")
    store._path = lambda name: checked  # type: ignore[method-assign]  # the check, made before the swap
    (root / "dir").rename(root / "was-dir")
    (root / "dir").symlink_to(outside)
    with pytest.raises(BadRequest, match="symlink"):
        store.open("dir/x.txt", version)
    (root / "dir").unlink()
    (root / "dir").mkdir()
    (root / "dir" / "x.txt").symlink_to(outside / "x.txt")  # the file itself swapped for a link
    with pytest.raises(BadRequest, match="symlink"):
        store.open("dir/x.txt", version)


# ---------------------------------------------------------------------------- residency
def test_a_restricted_gateways_blocks_stay_on_the_cluster(tmp_path: Path) -> None:
    sites = federation(tmp_path)
    z1111, z2222 = sites["z1111"], sites["z2222"]
    (tmp_path / "stays").mkdir()
    (tmp_path / "stays" / "cohort.csv").write_text("patient,age\n1,51\n")
    gateway = GatewayConfig(driver="path", root=tmp_path / "stays", listen="127.0.0.1:1", uuid=STAYS_GW,
                            residency="cluster")
    z1111.local.config.gateways.append(gateway)  # a gateway of z1111's: grants name it, collections inherit its policy
    service = Gateway(z1111.local.config, gateway, z1111.local.db.session, z1111.local.restricted_blocks,
                      registrant=z1111.local.gateway_registrant)
    alice = z1111.new_user("alice")
    grant(z1111, alice.user_uuid, STAYS_GW)
    visitor = z2222.new_user("visitor")
    config = z1111.local.config.collections
    with ServerThread(service.app()) as server:
        manifest = registered(server.url, alice.token, "cohort.csv")["manifest_text"]
        made = z1111.local.create(alice, "collections", {"manifest_text": manifest})
        assert made["residency"] == "cluster"  # set by the server: alice could not have set it
        plain = manifest.split()[1].split("+A")[0]

        def read(token: str, **headers: str) -> Any:
            signed = sign_locator(plain, token, int(time.time()) + 600, config.blob_signing_ttl,
                                  config.blob_signing_key.encode())  # as if a signature had leaked
            return http.request("GET", f"{server.url}/{signed}", headers={"Authorization": f"Bearer {token}",
                                                                          **headers})

        assert read(alice.token).data == b"patient,age\n1,51\n"
        refused = read(visitor.token)  # another cluster's user
        assert refused.status == 403 and b"stays on cluster z1111" in refused.data
        assert read(alice.token, **{CLUSTER_HEADER: "z2222"}).status == 403  # another cluster's keepstore
        # and the API: shared with the visitor, it is still not read from outside
        z1111.local.create(alice, "links", {"link_class": "permission", "name": "can_read",
                                            "tail_uuid": visitor.user_uuid, "head_uuid": made["uuid"]})
        with pytest.raises(ArchipelagoError) as info:
            z2222.backend.get(visitor, "collections", made["uuid"])
        assert info.value.status == 403
        # an unrestricted collection updated to read the restricted gateway's blocks becomes restricted
        other = z1111.local.create(alice, "collections", {"manifest_text": ""})
        updated = z1111.local.update(alice, "collections", other["uuid"], {"manifest_text": manifest})
        assert updated["residency"] == "cluster"


def test_a_visitor_registers_only_with_a_grant_their_token_checked_at_home(tmp_path: Path) -> None:
    """Visitors' tokens go through the cluster's own identity code (validated by their home)."""
    sites = federation(tmp_path)
    z1111, z2222 = sites["z1111"], sites["z2222"]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.txt").write_text("x\n")
    gateway = GatewayConfig(driver="path", root=tmp_path / "data", listen="127.0.0.1:1", uuid=PATH_GW)
    z1111.local.config.gateways.append(gateway)  # a gateway of z1111's: grants can name it
    service = Gateway(z1111.local.config, gateway, z1111.local.db.session, z1111.local.restricted_blocks,
                      registrant=z1111.local.gateway_registrant)
    visitor = z2222.new_user("visitor")
    with ServerThread(service.app()) as server:
        assert post_register(server.url, visitor.token, "x.txt").status == 403  # known at home, not granted here
        impostor = visitor.token[:-4] + "0000"
        assert post_register(server.url, impostor, "x.txt").status == 401  # its home says no
        z1111.local.create(z1111.admin, "links", {"link_class": "permission", "name": "can_write",
                                                  "tail_uuid": visitor.user_uuid, "head_uuid": PATH_GW})
        assert "+K@" in registered(server.url, visitor.token, "x.txt")["manifest_text"]


# ---------------------------------------------------------------------------- defect 11: gateway_source
def test_keep_services_shows_where_a_gateways_data_lies_only_to_who_may_register_through_it(site) -> None:
    cluster = site["site"]
    erin, frank = cluster.new_user("erin"), cluster.new_user("frank")
    grant(cluster, frank.user_uuid, WEB_GW)

    def sources(caller: Caller | None) -> dict[str, str | None]:
        items = cluster.local.keep_services(caller)["items"]
        return {i["uuid"]: i.get("gateway_source") for i in items if i["service_type"].startswith("gateway:")}

    assert set(sources(None).values()) == {None}  # anonymous
    assert set(sources(erin).values()) == {None}  # a plain user
    assert sources(frank) == {PATH_GW: None, WEB_GW: f"{site['web_url']}/public", STAYS_GW: None}
    assert None not in sources(cluster.admin).values() and str(site["data"]) in sources(cluster.admin).values()
    # through the API: a plain user's token, an invalid one (answered as to anyone), and none
    for token in (erin.token, MADE_UP):
        listed = cluster.client(Caller(erin.user_uuid, token)).request("GET", "keep_services/accessible")
        assert not [i for i in listed["items"] if "gateway_source" in i]
    listed = cluster.client(frank).request("GET", "keep_services/accessible")
    assert [i["uuid"] for i in listed["items"] if "gateway_source" in i] == [WEB_GW]


def test_a_redirect_is_judged_segment_by_segment_after_the_servers_own_resolution() -> None:
    from archipelago.errors import BadGateway
    from archipelago.gateway.urls import BaseUrl

    base = BaseUrl("http://data.example.org/public/")
    here = "http://data.example.org/public/a/b.txt"
    assert base.url_for("a/two words.txt") == "http://data.example.org/public/a/two%20words.txt"
    assert base.url_for("a//b;c") == "http://data.example.org/public/a/b%3Bc"  # one slash; ';' encoded
    assert base.follow(here, "c.txt") == "http://data.example.org/public/a/c.txt"
    assert base.follow(here, "../c.txt") == "http://data.example.org/public/c.txt"
    assert base.follow(here, "HTTP://Data.Example.org:80/public/x") == "http://data.example.org/public/x"
    for away in ("/publicity/x", "/public/%2e%2e/private", "/public/a/..%2f..%2fprivate", "../../private",
                 "https://data.example.org/public/x", "http://data.example.org:8080/public/x",
                 "http://other.example.org/public/x", "//127.0.0.1:25107/", "/public/x?file=../../private",
                 "/public/%00", "/public/a%5c..%5c..%5cprivate"):
        with pytest.raises(BadGateway, match="not followed"):
            base.follow(here, away)
