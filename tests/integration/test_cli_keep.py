"""`archi keep put/get` and `archi keepstore` as a user runs them: real processes, real files."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys

import pytest

from archipelago.run.ports import free_port, wait_for_http

pytestmark = pytest.mark.integration
ARCHI = [sys.executable, "-m", "archipelago"]
CLI_TOKEN = "v2/zzzzz-gj3su-000000000000001/clitoken"  # the one token a --data-dir keepstore stores blocks for


@pytest.fixture
def keepstore_cli(tmp_path):
    port = free_port()
    process = subprocess.Popen([*ARCHI, "keepstore", "--data-dir", str(tmp_path / "vol"), "--token", CLI_TOKEN,
                                "--listen", f"127.0.0.1:{port}"], stdout=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url, process=process)
    yield url
    process.terminate()
    process.wait(10)


def archi(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*ARCHI, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_put_then_get_round_trips_a_directory(keepstore_cli, tmp_path):
    src = tmp_path / "src"
    (src / "sub dir").mkdir(parents=True)
    (src / "a.txt").write_text("hello\n")
    (src / "sub dir" / "b:c.bin").write_bytes(os.urandom(300_000))
    (src / "empty").mkdir()
    env = {"ARVADOS_API_TOKEN": CLI_TOKEN}
    put = archi("keep", "put", str(src), "--keep", keepstore_cli, "--json", "--manifest-out",
                str(tmp_path / "m.txt"), env=env)
    assert put.returncode == 0, put.stderr
    result = json.loads(put.stdout)
    assert result["files"] == 2 and "\\040" in result["manifest_text"] and "\\072" in result["manifest_text"]
    got = archi("keep", "get", str(tmp_path / "m.txt"), str(tmp_path / "out"), "--keep", keepstore_cli, "--json",
                env=env)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["bytes"] == 300_006
    assert filecmp.cmp(src / "sub dir" / "b:c.bin", tmp_path / "out" / "sub dir" / "b:c.bin", shallow=False)
    assert (tmp_path / "out" / "empty").is_dir()
    pdh = archi("manifest", "pdh", str(tmp_path / "m.txt"))
    assert pdh.stdout.strip() == result["portable_data_hash"]


def test_get_with_the_wrong_token_fails_with_exit_1(keepstore_cli, tmp_path):
    (tmp_path / "f").write_text("x")
    refused = archi("keep", "put", str(tmp_path / "f"), "--keep", keepstore_cli, "--token", "v2/a/b")
    assert refused.returncode != 0  # a token this keepstore does not know stores nothing
    put = archi("keep", "put", str(tmp_path / "f"), "--keep", keepstore_cli, "--token", CLI_TOKEN,
                "--manifest-out", str(tmp_path / "m.txt"))
    assert put.returncode == 0
    got = archi("keep", "get", str(tmp_path / "m.txt"), str(tmp_path / "out"), "--keep", keepstore_cli,
                "--token", "v2/a/other", "--json")
    assert got.returncode == 1 and "invalid signature" in json.loads(got.stdout)["error"]


def test_bad_input_exits_2(tmp_path):
    assert archi("keep", "put", str(tmp_path / "missing"), "--keep", "http://127.0.0.1:9").returncode == 2
    assert archi("keep", "put", str(tmp_path)).returncode == 2  # no keep services
    bad = tmp_path / "bad.yml"
    bad.write_text("cluster_id: NOPE\n")
    result = archi("keepstore", "--config", str(bad))
    assert result.returncode == 2 and "cluster_id" in result.stderr


def test_resumed_upload_sends_nothing_already_stored(tmp_path):
    from archipelago.keep.client import KeepClient
    from archipelago.keep.errors import KeepWriteError
    from archipelago.keep.transfer import ResumeCache, plan_upload, upload
    from archipelago.run.processes import KeepstoreProcess
    from tests.support.clusters import ROOT_TOKEN, cluster_config

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(os.urandom(200_000))
    (src / "b.txt").write_text("b\n")
    cache = ResumeCache(tmp_path / "resume.json")
    with KeepstoreProcess(cluster_config([{"driver": "directory", "root": str(tmp_path / "vol")}]),
                          tmp_path) as ks:
        first = upload(KeepClient.from_urls([ks.url], ROOT_TOKEN, cache=None), plan_upload([src]), resume=cache)
    # the keepstore is gone: a resumed run must not need it for unchanged files
    dead = KeepClient.from_urls(["http://127.0.0.1:9"], ROOT_TOKEN, cache=None, retries=0)
    again = upload(dead, plan_upload([src]), resume=ResumeCache(tmp_path / "resume.json"))
    assert again == first
    # a changed file is sent again (and here fails, since nothing listens)
    (src / "b.txt").write_text("changed\n")
    with pytest.raises(KeepWriteError):
        upload(dead, plan_upload([src]), resume=ResumeCache(tmp_path / "resume.json"))
