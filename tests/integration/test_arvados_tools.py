"""The official Arvados tools (arv-put, arv-ls, arv-get from PyPI) against our cluster, unchanged."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archipelago.sdk import Collection
from tests.support.clusters import new_user, running_federation

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN))
    if path is None:
        pytest.skip(f"{name} not installed (pip install arvados-python-client)")
    return path


@pytest.fixture
def arvados_env(cluster, tmp_path):
    host = cluster.api_url.removeprefix("https://")
    return {**os.environ, "ARVADOS_API_HOST": host, "ARVADOS_API_TOKEN": cluster.admin_token,
            "ARVADOS_API_HOST_INSECURE": "1", "HOME": str(tmp_path),  # arv-put keeps its resume cache there
            "ARCHI_API_HOST": cluster.api_url, "ARCHI_API_TOKEN": cluster.admin_token,
            "ARCHI_API_HOST_INSECURE": "1"}


def make_tree(root: Path) -> Path:
    (root / "sub dir").mkdir(parents=True)
    (root / "a.txt").write_text("hello\n")
    (root / "sub dir" / "big.bin").write_bytes(os.urandom(5 << 20))
    for n in range(30):
        (root / "sub dir" / f"small-{n}.txt").write_text(f"{n}\n" * n)
    return root


def run(cmd: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{cmd[0]} failed:\n{result.stderr[-2000:]}"
    return result.stdout


def test_arv_put_ls_get_round_trip_and_archi_reads_it(arvados_env, tmp_path):
    src = make_tree(tmp_path / "src")
    uuid = run([tool("arv-put"), "--no-resume", "--name", "from arv-put", str(src)], arvados_env).strip()
    assert uuid.startswith("z1111-4zz18-")
    listing = run([tool("arv-ls"), uuid], arvados_env).splitlines()
    assert "./src/a.txt" in listing and "./src/sub dir/big.bin" in listing
    (tmp_path / "by-arv-get").mkdir()
    run([tool("arv-get"), "-r", f"{uuid}/", str(tmp_path / "by-arv-get") + "/"], arvados_env)
    assert not filecmp.dircmp(src, tmp_path / "by-arv-get" / "src").diff_files
    assert filecmp.cmp(src / "sub dir" / "big.bin", tmp_path / "by-arv-get" / "src" / "sub dir" / "big.bin",
                       shallow=False)
    # the same collection through our own CLI
    run([sys.executable, "-m", "archipelago", "get", uuid, str(tmp_path / "by-archi")], arvados_env)
    assert filecmp.cmp(src / "sub dir" / "big.bin", tmp_path / "by-archi" / "src" / "sub dir" / "big.bin",
                       shallow=False)


def test_archi_put_then_arv_get(arvados_env, tmp_path):
    src = make_tree(tmp_path / "src")
    out = run([sys.executable, "-m", "archipelago", "put", str(src), "--name", "from archi"], arvados_env)
    uuid = out.split()[0]
    (tmp_path / "dl").mkdir()
    run([tool("arv-get"), "-r", f"{uuid}/", str(tmp_path / "dl") + "/"], arvados_env)
    assert filecmp.cmp(src / "sub dir" / "big.bin", tmp_path / "dl" / "sub dir" / "big.bin", shallow=False)
    assert (tmp_path / "dl" / "a.txt").read_text() == "hello\n"


def _arvados_conf(path: Path, client) -> Path:
    path.write_text(f"ARVADOS_API_HOST={client.base.removeprefix('https://')}\nARVADOS_API_TOKEN={client.token}\n"
                    "ARVADOS_API_HOST_INSECURE=true\n")
    return path


def test_arv_copy_copies_collections_and_projects_between_clusters(tmp_path):
    with running_federation(tmp_path / "fed", 2) as federation:
        source, destination = federation["z1111"], federation["z2222"]
        src = _arvados_conf(tmp_path / "src.conf", source)
        dst = _arvados_conf(tmp_path / "dst.conf", destination)
        env = {**os.environ, "HOME": str(tmp_path)}
        data = os.urandom(3 << 20)
        collection = Collection(source)
        collection.write("dir/data.bin", data)
        record = collection.save_new("to copy")
        project = source.groups.create({"name": "a project to copy", "group_class": "project"})
        inner = Collection(source)
        inner.write("inner.txt", b"inside the project\n")
        inner.save_new("inner", owner_uuid=project["uuid"])
        target = destination.groups.create({"name": "copies land here", "group_class": "project"})
        common = [tool("arv-copy"), "--no-progress", "--src", str(src), "--dst", str(dst),
                  "--project-uuid", target["uuid"]]
        copied = run([*common, record["uuid"]], env).strip().splitlines()[-1]
        got = destination.collections.get(copied)
        assert copied.startswith("z2222-4zz18-") and got["portable_data_hash"] == record["portable_data_hash"]
        assert Collection(destination, copied).read("dir/data.bin") == data  # the blocks are on z2222 now
        by_pdh = run([*common, "--force", record["portable_data_hash"]], env).strip().splitlines()[-1]
        assert destination.collections.get(by_pdh)["portable_data_hash"] == record["portable_data_hash"]
        copied_project = run([*common, project["uuid"]], env).strip().splitlines()[-1]
        assert copied_project.startswith("z2222-j7d0g-")
        names = [c["name"] for c in destination.collections.list(
            filters=[["owner_uuid", "=", copied_project]])["items"]]
        assert names == ["inner"]


CONTENTS_SCRIPT = """
import json, sys, arvados
api = arvados.api("v1")
project = sys.argv[1]
contents = api.groups().contents(uuid=project, order=["name asc"]).execute()
only_collections = api.groups().contents(uuid=project, filters=[["uuid", "is_a", "arvados#collection"]]).execute()
paged = api.groups().contents(uuid=project, order=["name asc"], offset=1, limit=1).execute()
shared = api.groups().shared().execute()
print(json.dumps({"contents": [(i["kind"], i["name"]) for i in contents["items"]],
                  "available": contents["items_available"],
                  "collections": [i["name"] for i in only_collections["items"]],
                  "paged": [i["name"] for i in paged["items"]],
                  "shared": [i["uuid"] for i in shared["items"]]}))
"""


def test_the_sdk_lists_a_projects_contents_and_what_is_shared(cluster, arvados_env, tmp_path):
    from archipelago.sdk import ApiClient

    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    bob = new_user(admin, "bob")
    project = admin.groups.create({"name": "contents test", "group_class": "project"}, ensure_unique_name=True)
    admin.groups.create({"name": "b sub-project", "group_class": "project", "owner_uuid": project["uuid"]})
    for name in ("a data", "c data"):
        made = Collection(admin)
        made.write("x.txt", name.encode())
        made.save_new(name, owner_uuid=project["uuid"])
    admin.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": bob.users.current()["uuid"],
                        "head_uuid": project["uuid"]})
    result = json.loads(run([sys.executable, "-c", CONTENTS_SCRIPT, project["uuid"]],
                            {**arvados_env, "ARVADOS_API_TOKEN": bob.token}))
    assert result["contents"] == [["arvados#group", "b sub-project"], ["arvados#collection", "a data"],
                                  ["arvados#collection", "c data"]]
    assert result["available"] == 3
    assert sorted(result["collections"]) == ["a data", "c data"]
    assert result["paged"] == ["a data"]
    assert result["shared"] == [project["uuid"]]  # shared with bob, its sub-project is inside it
