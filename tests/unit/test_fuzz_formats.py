"""Generated input for the manifest parser and for keepstore's paths: a clear refusal (ManifestError;
a 4xx) or an answer, never a crash or a 5xx."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archipelago.formats.manifest import ManifestError, parse, portable_data_hash
from archipelago.keepstore.app import Keepstore, ServerThread
from archipelago.keepstore.store import BlockStore
from tests.support.clusters import ROOT_TOKEN, USER_TOKEN, cluster_config
from tests.support.keep_http import http, stub_validator

VALID = (". 37b51d194a7513e45b56f6524f2d51f2+3+Afoo@12345678 0:3:a\\040b.txt\n"
         "./sub d41d8cd98f00b204e9800998ecf8427e+0 0:0:empty 0:0:\\056\n")
PIECES = st.sampled_from([".", "./", "./a", " ", "\n", "\t", "\\", "\\0", "\\040", "\\777", ":", "0", "3",
                          "0:3:x", "1:99999999999999999999:y", "-1:2:z", "+", "+A", "+K@zzzzz", "+R",
                          "37b51d194a7513e45b56f6524f2d51f2", "d41d8cd98f00b204e9800998ecf8427e+0", "/", "..",
                          "\x00", "é", "\ud7ff"])
MANIFESTS = (st.text(max_size=120) | st.lists(PIECES, max_size=40).map("".join)
             | st.tuples(st.integers(0, len(VALID)), st.integers(0, len(VALID)), st.text(max_size=8))
             .map(lambda cut: VALID[:cut[0]] + cut[2] + VALID[cut[1]:]))


@settings(max_examples=1500, deadline=None)
@given(text=MANIFESTS)
def test_the_manifest_parser_refuses_clearly_or_parses(text: str) -> None:
    try:
        parsed = parse(text)
        parsed.tree()
        portable_data_hash(text)
    except ManifestError:
        return


@pytest.fixture(scope="module")
def keepstore_url(tmp_path_factory: pytest.TempPathFactory):
    root = Path(tmp_path_factory.mktemp("fuzz-keep"))
    config = cluster_config([{"driver": "directory", "root": str(root / "vol")}])
    keepstore = Keepstore(config, BlockStore.from_config(config), authenticate=stub_validator(USER_TOKEN))
    with ServerThread(keepstore.app()) as server:
        yield server.url, root


SEGMENTS = st.sampled_from(["..", ".", "%2e%2e", "%2F", "etc", "passwd", "index", "mounts", "trash", "pull",
                            "untrash", "blocks", "acbd18db4cc2f85cedef654fccc4a4d8", "+3", "+A", "@", "%00",
                            "0" * 32, "f" * 33, "~", "metrics"]) | st.text(max_size=12).map(lambda s: quote(s, safe=""))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segments=st.lists(SEGMENTS, min_size=1, max_size=4), method=st.sampled_from(["GET", "HEAD", "PUT", "DELETE"]),
       token=st.sampled_from([USER_TOKEN, ROOT_TOKEN, None]))
def test_keepstore_paths_never_fail_or_escape(keepstore_url, segments: list[str], method: str,
                                              token: str | None) -> None:
    url, root = keepstore_url
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = http.request(method, url + "/" + "/".join(segments), body=b"x" if method == "PUT" else None,
                            headers=headers, retries=False, redirect=False)
    assert response.status < 500, (method, segments, response.status, response.data[:300])
    outside = [p for p in root.iterdir() if p.name != "vol"]
    assert outside == []  # nothing written beside the volume, whatever the path
    assert not os.path.exists(root.parent / "passwd")
