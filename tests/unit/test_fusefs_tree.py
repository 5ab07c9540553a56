"""The FUSE view's directory tree from a manifest (no mount, no server: the tree is built before any
block is read)."""

from __future__ import annotations

import stat

from archipelago.compute.fusefs import CollectionFS


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
