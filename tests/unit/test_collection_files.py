"""`GET /arvados/v1/collections/{UUID|PDH}/files`: what it answers is what the parsed manifest says
(escaped names, nested and empty directories, files spanning blocks, a file written in pieces
across streams), page by page, from the stored index and from the in-memory one alike, and through
a federation (a peer's UUID forwarded, its signatures turned to +R; a PDH held only by a peer)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from archipelago.errors import BadRequest
from archipelago.formats.manifest import ManifestError, check_paths, parse, render
from archipelago.resources import collection_files
from archipelago.resources.collection_files import CHUNK, FileIndexes
from archipelago.sdk import ApiClient
from tests.support.backends import Site, federation, single_cluster

B1, B2, B3 = "a" * 32 + "+10", "b" * 32 + "+20", "c" * 32 + "+9000"
EMPTY = "d41d8cd98f00b204e9800998ecf8427e+0"
MANIFEST = (
    f". {B1} 0:1:top.txt 1:0:empty\\040file\n"
    f"./a\\040b {B1} {B2} 0:5:x.txt 5:20:span.dat 25:5:tail\\072colon\n"
    f"./a\\040b/sub {B2} 0:6:y.txt\n"
    f"./a\\040b/sub/deeper/deepest {B2} 6:2:z\n"
    f"./a-c {B1} 0:10:after.txt\n"
    f"./empty {EMPTY} 0:0:\\056\n"
    f"./a\\040b {B2} 0:4:x.txt\n"  # more of x.txt, in a second stream of the same directory
)
SIGNATURE = re.compile(r"\+A[0-9a-f]{40}@[0-9a-f]{8}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return single_cluster(tmp_path_factory.mktemp("files"))


def owned(site: Site, manifest: str, name: str = "c") -> tuple[ApiClient, dict[str, Any]]:
    """A collection of a new user's (created by the admin: these blocks exist only on paper)."""
    user = site.new_user("owner")
    record = site.client(site.admin).collections.create(
        {"manifest_text": manifest, "owner_uuid": user.user_uuid, "name": name})
    return site.client(user), record


def files(client: ApiClient, key: str, **params: Any) -> dict[str, Any]:
    return client.request("GET", f"collections/{key}/files", params={k: str(v).lower() if isinstance(v, bool) else v
                                                                        for k, v in params.items()})


def everything(client: ApiClient, key: str, page: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        answer = files(client, key, offset=len(items), limit=page, **params)
        items += answer["items"]
        if not answer["items"]:
            assert len(items) == answer["items_available"]
            return items


def unsigned(segments: list[list[Any]]) -> list[tuple[str, int, int]]:
    return [(SIGNATURE.sub("", locator), offset, length) for locator, offset, length in segments]


def expected_files(manifest: str) -> dict[str, list[tuple[str, int, int]]]:
    return {f"{d}/{name}"[2:]: segs for d, found in parse(manifest).tree().items() for name, segs in found.items()}


def test_the_recursive_listing_is_the_parsed_manifest(site: Site) -> None:
    client, record = owned(site, MANIFEST)
    items = files(client, record["uuid"], recursive=True, segments=True)["items"]
    listed = {item["path"]: unsigned(item["segments"]) for item in items if item["type"] == "file"}
    assert listed == expected_files(MANIFEST)
    assert listed["a b/x.txt"] == [(B1, 0, 5), (B2, 0, 4)]  # both streams' pieces, in manifest order
    assert listed["a b/span.dat"] == [(B1, 5, 5), (B2, 0, 15)]  # across a block boundary
    assert listed["empty file"] == []
    assert all(SIGNATURE.search(s[0]) for item in items for s in item.get("segments", []))  # readable blocks
    directories = [item["path"] for item in items if item["type"] == "directory"]
    assert directories == ["a b", "a b/sub", "a b/sub/deeper", "a b/sub/deeper/deepest", "a-c", "empty"]
    assert [i["path"] for i in items][:3] == ["empty file", "top.txt", "a b"]  # a directory's files, then below
    sizes = {item["path"]: item["size"] for item in items}
    assert sizes["a b/x.txt"] == 9 and sizes["a b"] == 9 + 20 + 5 + 6 + 2 and sizes["a b/sub/deeper"] == 2


def test_a_directory_lists_its_children(site: Site) -> None:
    client, record = owned(site, MANIFEST)
    top = files(client, record["uuid"])
    assert (top["type"], top["size"], top["portable_data_hash"]) == ("directory", 53, record["portable_data_hash"])
    assert [(i["name"], i["type"]) for i in top["items"]] == [
        ("a b", "directory"), ("a-c", "directory"), ("empty", "directory"), ("empty file", "file"),
        ("top.txt", "file")]
    assert all("segments" not in item for item in top["items"])
    inside = files(client, record["uuid"], path="a b")["items"]
    assert [i["path"] for i in inside] == ["a b/sub", "a b/span.dat", "a b/tail:colon", "a b/x.txt"]
    assert files(client, record["uuid"], path="empty")["items"] == []
    assert files(client, record["uuid"], path="a b/sub/")["items"][0]["path"] == "a b/sub/deeper"


def test_a_file_by_its_path_carries_its_signed_segments(site: Site) -> None:
    client, record = owned(site, MANIFEST)
    for key in (record["uuid"], record["portable_data_hash"]):
        found = files(client, key, path="a b/tail:colon")
        assert (found["type"], found["size"], found["items_available"]) == ("file", 5, 1)
        assert unsigned(found["items"][0]["segments"]) == [(B2, 15, 5)]
    with pytest.raises(Exception, match="no file or directory"):
        files(client, record["uuid"], path="a b/nope")


def big_directory(count: int) -> str:
    tokens = " ".join(f"{n * 3}:3:f{n:05d}" for n in range(count))
    return f"./many {B3} {tokens}\n./many/zz {B1} 0:1:last\n. {B1} 0:2:first\n"


@pytest.mark.parametrize("stored", [False, True])
def test_pages_across_chunks_from_either_index(site: Site, stored: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the index on disk (STORE_FROM_BYTES lowered) or in memory: the same answers."""
    monkeypatch.setattr(collection_files, "STORE_FROM_BYTES", 0 if stored else 1 << 40)
    count = CHUNK * 2 + 5
    manifest = big_directory(count)
    client, record = owned(site, manifest)
    expected = expected_files(manifest)
    for page in (CHUNK - 1, 1000, 7 * CHUNK):
        items = everything(client, record["uuid"], page, recursive=True, segments=True)
        assert {i["path"]: unsigned(i["segments"]) for i in items if i["type"] == "file"} == expected
    children = everything(client, record["uuid"], 333, path="many")
    assert [i["name"] for i in children] == ["zz", *(f"f{n:05d}" for n in range(count))]
    for n in (0, CHUNK - 1, CHUNK, CHUNK + 1, count - 1):
        assert unsigned(files(client, record["uuid"], path=f"many/f{n:05d}")["items"][0]["segments"]) == \
            [(B3, n * 3, 3)]
    path = site.local.registry["collections"].file_indexes.path(f"{record['uuid']}.1")  # type: ignore[attr-defined]
    assert path.exists() == stored


def test_the_stored_index_is_built_once_and_never_half_written(tmp_path: Path) -> None:
    indexes = FileIndexes(tmp_path / "index")
    calls = []

    def text() -> str:
        calls.append(1)
        return MANIFEST

    for _ in range(3):
        connection = indexes.open("z1111-4zz18-000000000000000.3", 2 << 20, text)
        assert connection.execute("SELECT count(*) FROM dirs").fetchone()[0] == 7
        connection.close()
    assert calls == [1]
    assert [p.name for p in (tmp_path / "index").iterdir()] == ["z1111-4zz18-000000000000000.3.v1.sqlite"]
    assert (tmp_path / "index").stat().st_mode & 0o077 == 0  # file names are the tenants' secrets
    indexes.open("z1111-4zz18-000000000000000.4", 2 << 20, text).close()  # a new version: the old one goes
    assert [p.name for p in (tmp_path / "index").iterdir()] == ["z1111-4zz18-000000000000000.4.v1.sqlite"]


@pytest.mark.parametrize("stored", [False, True])
def test_new_hints_with_the_same_pdh_are_answered(site: Site, stored: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """`archi keep move` repoints a collection's blocks (+K hints come or go), its PDH unchanged:
    readers are sent where the blocks are now, not where an index of the old manifest says."""
    monkeypatch.setattr(collection_files, "STORE_FROM_BYTES", 0 if stored else 1 << 40)
    hinted = MANIFEST.replace(B2, B2 + "+K@z1111-bi6l4-abcdefghijklmno")
    client, record = owned(site, hinted)
    first = files(client, record["uuid"], path="a b/span.dat")["items"][0]["segments"]
    assert "+K@z1111-bi6l4-abcdefghijklmno" in first[1][0]
    moved = site.client(site.admin).collections.update(record["uuid"], {"manifest_text": MANIFEST})
    assert moved["portable_data_hash"] == record["portable_data_hash"]
    for key in (record["uuid"], record["portable_data_hash"]):
        segments = files(client, key, path="a b/span.dat")["items"][0]["segments"]
        assert unsigned(segments) == [(B1, 5, 5), (B2, 0, 15)], key


def test_an_empty_collection_is_an_empty_top(site: Site) -> None:
    client, record = owned(site, "")
    assert files(client, record["uuid"])["items"] == []
    assert files(client, record["uuid"], recursive=True)["items_available"] == 0


def test_through_a_federation(tmp_path: Path) -> None:
    sites = federation(tmp_path)
    home, peer = sites["z1111"], sites["z2222"]
    user = home.new_user("fed")
    record = peer.client(peer.admin).collections.create({"manifest_text": MANIFEST, "name": "there"})
    peer.local.create(peer.admin, "links", {"link_class": "permission", "name": "can_read",
                                            "tail_uuid": user.user_uuid, "head_uuid": record["uuid"]})
    client = home.client(user)
    for key in (record["uuid"], record["portable_data_hash"]):
        found = files(client, key, path="a b/x.txt")
        locators = [s[0] for s in found["items"][0]["segments"]]
        assert all("+Rz2222-" in locator for locator in locators), locators
        listed = files(client, key, recursive=True)["items"]
        assert {i["path"] for i in listed if i["type"] == "file"} == set(expected_files(MANIFEST))


def test_the_index_keeps_no_writers_signature(tmp_path: Path) -> None:
    """Built from the manifest a client sent (signed for its token): stored without the `+A`s."""
    signed = MANIFEST.replace(B2, B2 + "+A" + "f" * 40 + "@6b269939").replace(B1, B1 + "+K@z1111-bi6l4-abcdefghijklmno")
    indexes = FileIndexes(tmp_path / "index")
    connection = indexes.open("z1111-4zz18-111111111111111.1", 2 << 20, lambda: signed)
    bodies = b"".join(row[0] for row in connection.execute("SELECT body FROM chunks"))
    assert b"+A" not in bodies and b"+K@z1111-bi6l4-abcdefghijklmno" in bodies
    found = collection_files.answer(connection, collection_files.FilesQuery(path="a b/span.dat"), None)
    assert found["items"][0]["segments"] == [[B1 + "+K@z1111-bi6l4-abcdefghijklmno", 5, 5], [B2, 0, 15]]


NAMES = st.text(alphabet=st.sampled_from("ab c:\\é-_.x"), min_size=1, max_size=6).filter(lambda n: n not in (".", ".."))


@st.composite
def manifests(draw: st.DrawFn) -> str:
    """Normalized manifests of random trees: escaped names, nesting, empty files and directories,
    files cut across the blocks of their stream."""
    blocks = [f"{n:032x}+{size}" for n, size in enumerate(draw(st.lists(st.integers(1, 50), min_size=1, max_size=4)))]
    tree: dict[str, dict[str, list[tuple[str, int, int]]]] = {}
    for parts in draw(st.lists(st.lists(NAMES, min_size=0, max_size=3), min_size=1, max_size=6)):
        dirname = "/".join([".", *parts])
        files = tree.setdefault(dirname, {})
        for name in draw(st.lists(NAMES, max_size=4, unique=True)):
            segments = []
            for _ in range(draw(st.integers(0, 3))):
                locator = draw(st.sampled_from(blocks))
                size = int(locator.split("+")[1])
                offset = draw(st.integers(0, size - 1))
                segments.append((locator, offset, draw(st.integers(1, size - offset))))
            files[name] = segments
    text = render(tree)
    try:
        check_paths(parse(text).tree())  # a path both a file and a directory is refused on write
    except ManifestError:
        assume(False)
    return text


@settings(max_examples=200, deadline=None)
@given(manifest=manifests(), page=st.integers(1, 7))
def test_any_manifest_is_listed_as_parsed(manifest: str, page: int) -> None:
    """Paged recursive listings and per-file lookups of the index give the parsed tree exactly."""
    connection = sqlite3.connect(":memory:")
    collection_files.build(connection, parse(manifest).tree())
    items: list[dict[str, Any]] = []
    while True:
        query = collection_files.FilesQuery(recursive=True, segments=True, offset=len(items), limit=page)
        answer = collection_files.answer(connection, query, None)
        items += answer["items"]
        if not answer["items"]:
            break
    expected = expected_files(manifest)
    listed = {i["path"]: [tuple(s) for s in i["segments"]] for i in items if i["type"] == "file"}
    assert listed == expected
    for path, segments in expected.items():
        if "\\" in path:  # refused in a path, as by the download endpoint (archi ls/get ask for what is above)
            with pytest.raises(BadRequest):
                collection_files.FilesQuery(path=path)
            continue
        found = collection_files.answer(connection, collection_files.FilesQuery(path=path), None)
        assert [tuple(s) for s in found["items"][0]["segments"]] == segments
    named = [d[2:] for d in parse(manifest).tree() if d != "."] + [p.rpartition("/")[0] for p in expected]
    implied = {"/".join(p.split("/")[:n]) for p in named if p for n in range(1, p.count("/") + 2)}
    assert {i["path"] for i in items if i["type"] == "directory"} == implied
