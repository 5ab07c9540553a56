"""The runner's view of keep: locations: URI quoting and shell-like globs (no server needed)."""

from __future__ import annotations

from archipelago.cwl.fsaccess import glob_matches, keep_location, split

PDH = "d41d8cd98f00b204e9800998ecf8427e+0"


def test_locations_are_quoted_uris_and_split_back_to_collection_paths():
    for path in ("A:Gln2Cys_result/hello.txt", "octothorpe/item #1.txt", "100% done", "plain/name.txt"):
        location = keep_location(PDH, path)
        assert " " not in location and "#" not in location
        assert split(location) == (PDH, path)
    assert keep_location(PDH) == f"keep:{PDH}" and split(f"keep:{PDH}") == (PDH, "")


def test_glob_stars_stay_within_one_directory_and_skip_hidden_names():
    assert glob_matches("testdir/*", "testdir/a") and glob_matches("testdir/*", "testdir/c")
    assert not glob_matches("testdir/*", "testdir/c/d")
    assert glob_matches("*/*.txt", "out/x.txt") and not glob_matches("*.txt", "out/x.txt")
    assert not glob_matches("*", ".hidden") and glob_matches(".*", ".hidden")
    assert glob_matches("", "") and not glob_matches("*", "")  # '*' lists the top, not the collection
