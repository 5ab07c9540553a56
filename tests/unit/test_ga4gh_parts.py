"""The pure parts of DRS, WES and downloads: ids and paths, byte ranges, entries of a manifest,
WES states, and checksums computed once (a slow one answered "come back", never computed twice)."""

from __future__ import annotations

import hashlib
import threading

import pytest

from archipelago.errors import BadRequest, NotFound
from archipelago.formats.manifest import render
from archipelago.ga4gh.checksums import Checksums, StillComputing, bundle_digest, whole_block_md5
from archipelago.ga4gh.files import RangeNotSatisfiable, byte_range, entry, tree_of
from archipelago.ga4gh.paths import ObjectId, collection_key, file_path, object_id
from archipelago.ga4gh.wes import page, run_state

PDH = "d41d8cd98f00b204e9800998ecf8427e+0"


def test_drs_ids_are_a_pdh_and_a_path() -> None:
    assert object_id(PDH) == ObjectId(PDH, "")
    assert object_id(f"{PDH}/a/b c.txt") == ObjectId(PDH, "a/b c.txt")
    assert object_id(PDH.replace("+", "-") + "/x") == ObjectId(PDH, "x")
    assert ObjectId(PDH, "a/b c.txt").quoted() == "d41d8cd98f00b204e9800998ecf8427e%2B0%2Fa%2Fb%20c.txt"
    for bad in ("", "z1111-4zz18-000000000000000", "d41d8cd98f00b204e9800998ecf8427e", f"{PDH}/../x",
                f"{PDH}/a//b", f"{PDH}/./x", f"{PDH}/a\0b", f"{PDH}/a\\b"):
        with pytest.raises(BadRequest):
            object_id(bad)


def test_paths_never_leave_the_collection() -> None:
    assert file_path("a/b/") == "a/b" and file_path("") == ""
    for bad in ("..", "a/..", "../a", "a/./b", "/a", "a//b", "a\0", "a\\..\\b"):
        with pytest.raises(BadRequest):
            file_path(bad)
    assert collection_key(PDH.replace("+", "-")) == PDH
    with pytest.raises(BadRequest):
        collection_key("../users")


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("bytes=0-9", (0, 10)), ("bytes=5-", (5, 100)), ("bytes=-10", (90, 100)),
    ("bytes=90-200", (90, 100)), ("bytes=-500", (0, 100)), ("bytes=0-1,5-6", None), ("items=0-1", None),
    ("bytes=9-2", None), ("bytes=-", None), ("bytes=abc", None),
])
def test_byte_ranges(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0", "bytes=99999999999999999999-"])
def test_ranges_past_the_end_are_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        byte_range(header, 100)
    assert info.value.status == 416 and info.value.size == 100


def test_entries_of_a_manifest() -> None:
    block = "acbd18db4cc2f85cedef654fccc4a4d8+3"
    tree = tree_of(render({".": {"top.txt": [(block, 0, 3)]}, "./d/e": {"deep.txt": [(block, 0, 2)]},
                           "./empty": {}}))
    assert entry(tree, "top.txt").size == 3 and entry(tree, "d/e/deep.txt").size == 2
    assert entry(tree, "").children == {"top.txt": False, "d": True, "empty": True}
    assert entry(tree, "d").children == {"e": True} and entry(tree, "empty").children == {}
    with pytest.raises(NotFound):
        entry(tree, "d/missing")
    assert whole_block_md5([(block, 0, 3)]) == block[:32] and whole_block_md5([(block, 0, 2)]) is None


def test_a_bundle_digest_is_the_digest_of_its_childrens_sorted() -> None:
    assert bundle_digest("md5", ["72794b6d", "5e089d29"]) == hashlib.md5(b"5e089d2972794b6d").hexdigest()


def test_a_slow_checksum_says_come_back_and_is_computed_once() -> None:
    checksums = Checksums(None, wait_seconds=0.05)
    release, calls = threading.Event(), []

    def slow() -> str:
        calls.append(1)
        release.wait(10)
        checksums.remember(PDH, "big", "md5", "ab" * 16)
        return "ab" * 16

    with pytest.raises(StillComputing) as info:
        checksums.get(PDH, "big", "md5", slow)
    assert info.value.status == 202
    with pytest.raises(StillComputing):
        checksums.get(PDH, "big", "md5", slow)  # the same computation, not a second one
    release.set()
    checksums.wait_seconds = 10
    assert checksums.get(PDH, "big", "md5", slow) == "ab" * 16
    assert checksums.get(PDH, "big", "md5", slow) == "ab" * 16 and calls == [1]


@pytest.mark.parametrize(("request_fields", "container", "state"), [
    ({"state": "Uncommitted", "priority": 0}, None, "QUEUED"),
    ({"state": "Committed", "priority": 500}, None, "QUEUED"),
    ({"state": "Committed", "priority": 500}, {"state": "Queued"}, "QUEUED"),
    ({"state": "Committed", "priority": 500}, {"state": "Locked"}, "INITIALIZING"),
    ({"state": "Committed", "priority": 500}, {"state": "Running"}, "RUNNING"),
    ({"state": "Committed", "priority": 0}, {"state": "Running"}, "CANCELING"),
    ({"state": "Final", "priority": 500}, {"state": "Complete", "exit_code": 0}, "COMPLETE"),
    ({"state": "Final", "priority": 500}, {"state": "Complete", "exit_code": 1}, "EXECUTOR_ERROR"),
    ({"state": "Final", "priority": 0}, {"state": "Cancelled"}, "CANCELED"),
    ({"state": "Final", "priority": 500}, {"state": "Cancelled", "runtime_status": {"error": "disk"}},
     "SYSTEM_ERROR"),
    ({"state": "Final", "priority": 500}, None, "SYSTEM_ERROR"),
])
def test_wes_states(request_fields: dict, container: dict | None, state: str) -> None:
    assert run_state(request_fields, container) == state


def test_pages() -> None:
    assert page(None, None) == (0, 100) and page("5", "10") == (10, 5) and page("5000", "") == (0, 1000)
    for size, token in (("0", None), ("-1", None), ("x", None), (None, "-3"), (None, "abc")):
        with pytest.raises(BadRequest):
            page(size, token)
