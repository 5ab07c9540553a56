"""The FUSE view's directory tree from a manifest (no mount, no server: the tree is built before any
block is read)."""

from __future__ import annotations

import stat

from archipelago.executor.fusefs import CollectionFS


class NoKeep:
    """Stands in for an API client: building the tree reads no blocks."""

    def keep(self) -> None:
        return None


def test_streams_deep_in_the_tree_make_every_parent_directory():
    manifest = ("./0/cwl/subdir 0f1ab5f4a1b1dd4a7b5c2a3b4c5d6e7f+26 0:26:literal.txt\n"
                ". 0f1ab5f4a1b1dd4a7b5c2a3b4c5d6e7f+26 0:26:top.txt\n")
    fs = CollectionFS(manifest, NoKeep())  # type: ignore[arg-type]
    for directory in ("/", "/0", "/0/cwl", "/0/cwl/subdir"):
        assert stat.S_ISDIR(fs.getattr(directory)["st_mode"]), directory
    assert fs.readdir("/", None)[2:] == ["0", "top.txt"]
    assert fs.readdir("/0", None)[2:] == ["cwl"] and fs.readdir("/0/cwl", None)[2:] == ["subdir"]
    assert fs.getattr("/0/cwl/subdir/literal.txt")["st_size"] == 26


def test_read_segments_fetches_only_the_blocks_under_the_range() -> None:
    from archipelago.sdk.collection import read_segments

    blocks = {"a": b"0123456789", "b": b"abcdefghij", "c": b"ABCDEFGHIJ"}
    fetched: list[str] = []

    class Keep:
        def get(self, locator: str) -> bytes:
            fetched.append(locator)
            return blocks[locator]

    segments = [("a", 2, 6), ("b", 0, 10), ("c", 5, 5)]  # the file: "234567" "abcdefghij" "FGHIJ"
    assert read_segments(Keep(), segments, 4, 8) == b"67ab"
    assert fetched == ["a", "b"]
    fetched.clear()
    heard: list[tuple[str, int]] = []
    assert read_segments(Keep(), segments, 16, 99, lambda loc, size: heard.append((loc, size))) == b"FGHIJ"
    assert fetched == ["c"] and heard == [("c", 10)]
    assert read_segments(Keep(), segments, 21, 30) == b""
