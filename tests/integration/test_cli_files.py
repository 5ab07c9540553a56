"""`archi ls` and `archi get` of a path in a collection, as subprocesses against a real cluster: they ask
the collection files endpoint for that part alone, and print (--json) and write what reading the
whole manifest gave before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from archipelago.sdk import ApiClient, Collection
from tests.support.clusters import new_user

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True, scope="module"),
]
FILES = {"top.txt": b"top\n", "runs/a b.txt": b"spaced\n", "runs/sub/deep.csv": b"x,y\n1,2\n",
         "runs/sub/more/z.bin": bytes(range(256)) * 300, "runs-2/other.txt": b"other\n",
         "runs/back\\slash/f.txt": b"a name the API takes in no path\n"}


@pytest.fixture(scope="module")
def user(cluster: Any) -> ApiClient:
    return new_user(ApiClient(cluster.api_url, cluster.admin_token, insecure=True), "lister")


@pytest.fixture(scope="module")
def record(user: ApiClient) -> dict[str, Any]:
    collection = Collection(user)
    for path, data in FILES.items():
        collection.write(path, data)
    collection.mkdir("runs/empty")
    return collection.save_new("tree")


@pytest.fixture(scope="module")
def env(cluster: Any, user: ApiClient, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("home")), "ARCHI_API_HOST": cluster.api_url,
            "ARCHI_API_TOKEN": user.token, "ARCHI_API_HOST_INSECURE": "1"}


def archi(env: dict[str, str], *args: str, code: int = 0) -> Any:
    result = subprocess.run([sys.executable, "-m", "archipelago", *args, "--json"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == code, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_ls_prints_what_the_whole_manifest_says(user: ApiClient, record: dict, env: dict[str, str]) -> None:
    everything = [{"path": p, "size": s} for p, s in Collection(user, record["uuid"]).files()]
    assert {e["path"] for e in everything} == set(FILES)
    for key in (record["uuid"], record["portable_data_hash"]):
        assert archi(env, "ls", key) == everything
        for sub in ("runs", "runs/", "runs/sub", "runs/sub/more/z.bin", "runs/back\\slash", "runs/back\\slash/f.txt"):
            prefix = sub.rstrip("/")
            assert archi(env, "ls", f"{key}/{sub}") == [
                e for e in everything if e["path"] == prefix or e["path"].startswith(prefix + "/")], sub
    for missing in ("nope", "runs/empty", "run"):
        assert archi(env, "ls", f"{record['uuid']}/{missing}", code=2)["error"] == \
            f"{missing} is not in {record['uuid']}"


def test_get_of_a_path_writes_that_part(record: dict, env: dict[str, str], tmp_path: Path) -> None:
    archi(env, "get", f"{record['uuid']}/runs/sub/deep.csv", str(tmp_path / "one"))
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["deep.csv"]
    assert (tmp_path / "one" / "deep.csv").read_bytes() == FILES["runs/sub/deep.csv"]
    done = archi(env, "get", f"{record['portable_data_hash']}/runs", str(tmp_path / "part"))
    assert done["bytes"] == sum(len(d) for p, d in FILES.items() if p.startswith("runs/"))
    for path, data in FILES.items():
        if path.startswith("runs/"):
            assert (tmp_path / "part" / path.removeprefix("runs/")).read_bytes() == data
    assert not (tmp_path / "part" / "other.txt").exists()
    archi(env, "get", f"{record['uuid']}/runs/back\\slash/f.txt", str(tmp_path / "odd"))  # asked of what is above it
    assert (tmp_path / "odd" / "f.txt").read_bytes() == FILES["runs/back\\slash/f.txt"]
    (tmp_path / "part" / "a b.txt").write_bytes(b"mine")
    assert "a b.txt" in archi(env, "get", f"{record['uuid']}/runs", str(tmp_path / "part"), code=2)["error"]
    assert archi(env, "get", f"{record['uuid']}/nope", str(tmp_path / "none"), code=2)["error"] == \
        f"nope is not in {record['uuid']}"
