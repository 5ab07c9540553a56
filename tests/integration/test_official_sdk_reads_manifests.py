"""Every kind of manifest archipelago writes, read by the official Arvados Python SDK file by file
against a real cluster: sizes and bytes as ours and as the data (issue 17, defect 10 — `archi
register` wrote a zero-length block between two with data, and the SDK read the file after it as
empty while `arv-get` exited 0). Writers: `archi register` (a gateway over a directory, and an S3
bucket with folder markers), `archi keep move` into Keep and out to a gateway, `archi put`, a
container's output, `archi run`'s final collection; and the official `arv-get` of a registered one."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from archipelago.config import GatewayConfig, dump_config, load_config
from archipelago.formats.manifest import check_interop, parse
from archipelago.rpc import ApiRequestError
from archipelago.run.cluster import CONFIG_NAME, init_cluster
from archipelago.run.ports import free_port
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient, Collection

pytestmark = pytest.mark.integration
official_collection = pytest.importorskip("arvados.collection")  # the official SDK: a test extra
arvados = pytest.importorskip("arvados")

BIN = Path(sys.executable).parent
PATH_GW, S3_GW = (f"z1111-bi6l4-gateway{n:08d}" for n in range(2))
EMPTY = "d41d8cd98f00b204e9800998ecf8427e+0"
# the defect's prefix: an empty file between two with data, plus nested directories
FILES = {"a.txt": b"a" * 15, "b.txt": b"", "c.txt": b"c" * 105, "sub/x.txt": b"x\n", "sub/deep/e.txt": b"",
         "sub/deep/f.txt": b"f" * 70}


@pytest.fixture(scope="module")
def site(tmp_path_factory, s3_server) -> Iterator[dict[str, Any]]:
    """A cluster (its local dispatcher included) with two gateways: a directory and an S3 bucket."""
    directory = tmp_path_factory.mktemp("interop-cluster")
    data = tmp_path_factory.mktemp("interop-data")
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket="interop")
    init_cluster(directory, "z1111")
    config = load_config(directory / CONFIG_NAME)
    config.gateways = [
        GatewayConfig(driver="path", root=data, listen=f"127.0.0.1:{free_port()}"),
        GatewayConfig(driver="s3", bucket="interop", endpoint=s3_server, access_key="testing",
                      secret_key="testing", listen=f"127.0.0.1:{free_port()}"),
    ]
    (directory / CONFIG_NAME).write_text(dump_config(config))
    with ClusterProcess(directory) as cluster:
        # the admin registers: registering will need a permission on the gateway, which admins have
        admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
        yield {"cluster": cluster, "admin": admin, "data": data, "s3": s3}


def archi(cluster: Any, token: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, "ARCHI_API_HOST": cluster.api_url, "ARCHI_API_TOKEN": token, "ARCHI_API_HOST_INSECURE": "1"}
    result = subprocess.run([str(BIN / "archi"), *args, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(json.loads(result.stdout))


def official_api(client: ApiClient) -> Any:
    """The official SDK's API client for the same cluster and token."""
    return arvados.api("v1", host=client.base.removeprefix("https://").split("/")[0], token=client.token,
                       insecure=True, cache=False)


def official_files(client: ApiClient, identifier: str) -> dict[str, bytes]:
    """Every file of the collection as the official SDK reads it (blocks through its own Keep client,
    gateways' included): "dir/name" -> bytes."""
    found: dict[str, bytes] = {}

    def walk(directory: Any, prefix: str) -> None:
        for name in directory:
            item = directory[name]
            if isinstance(item, official_collection.RichCollectionBase):
                walk(item, f"{prefix}{name}/")
                continue
            with directory.open(name, "rb") as handle:
                data = handle.read(item.size())
            assert len(data) == item.size(), f"{prefix}{name}: the SDK says {item.size()} bytes, read {len(data)}"
            found[f"{prefix}{name}"] = data

    walk(official_collection.CollectionReader(identifier, api_client=official_api(client)), "")
    return found


def ours(client: ApiClient, identifier: str) -> dict[str, bytes]:
    collection = Collection(client, identifier)
    return {path: collection.read(path) for path, _ in collection.files()}


def read_alike(client: ApiClient, identifier: str, expected: dict[str, bytes] | None = None) -> dict[str, Any]:
    """The collection's manifest passes the interop rules, and the official SDK reads every file as we
    do (and as `expected`, when given). Returns the record."""
    record = client.collections.get(identifier)
    check_interop(parse(record["unsigned_manifest_text"]))
    mine = ours(client, identifier)
    assert official_files(client, identifier) == mine
    if expected is not None:
        assert mine == expected
    return dict(record)


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def test_a_registered_prefix_is_read_alike_and_arv_get_writes_every_file(site, tmp_path):
    admin, data = site["admin"], site["data"]
    write_tree(data / "defect10", FILES)
    made = archi(site["cluster"], admin.token, "register", "defect10", "--gateway", PATH_GW)
    record = read_alike(admin, made["uuid"], FILES)
    first = record["unsigned_manifest_text"].splitlines()[0].split(" ")
    assert EMPTY not in first and "0:0:b.txt" in first  # the defect vector, as Arvados writes it
    arv_get = shutil.which("arv-get", path=str(BIN))
    if arv_get is None:
        pytest.skip("arv-get not installed")
    env = {**os.environ, "ARVADOS_API_HOST": admin.base.removeprefix("https://").split("/")[0],
           "ARVADOS_API_TOKEN": admin.token, "ARVADOS_API_HOST_INSECURE": "1", "HOME": str(tmp_path)}
    (tmp_path / "got").mkdir()
    fetched = subprocess.run([arv_get, "-r", f"{made['uuid']}/", str(tmp_path / "got") + "/"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert fetched.returncode == 0, fetched.stderr
    got = {p.relative_to(tmp_path / "got").as_posix(): p.read_bytes()
           for p in (tmp_path / "got").rglob("*") if p.is_file()}
    assert got == FILES


def test_a_bucket_with_folder_markers_is_read_alike(site):
    s3 = site["s3"]
    for key, body in {**{f"run/{k}": v for k, v in FILES.items()}, "run/": b"", "run/nothing/": b""}.items():
        s3.put_object(Bucket="interop", Key=key, Body=body)
    made = archi(site["cluster"], site["admin"].token, "register", "run", "--gateway", S3_GW)
    record = read_alike(site["admin"], made["uuid"], FILES)
    assert f"./nothing {EMPTY} 0:0:\\056" in record["unsigned_manifest_text"].splitlines()  # the empty folder
    assert "nothing" in official_collection.CollectionReader(made["uuid"], api_client=official_api(site["admin"]))


def test_keep_move_in_and_out_keeps_manifests_read_alike(site):
    admin, data = site["admin"], site["data"]
    write_tree(data / "to-move", FILES)
    made = archi(site["cluster"], admin.token, "register", "to-move", "--gateway", PATH_GW)
    for to in ("keep", S3_GW):
        moved = archi(site["cluster"], admin.token, "keep", "move", made["uuid"], "--to", to)
        assert moved["portable_data_hash"] == made["portable_data_hash"]
        read_alike(admin, made["uuid"], FILES)


def test_put_and_a_containers_output_are_read_alike(site, tmp_path):
    from tests.support.compute import submit, wait_final

    admin = site["admin"]
    write_tree(tmp_path / "up", FILES)
    (tmp_path / "up" / "empty-dir").mkdir()
    put = archi(site["cluster"], admin.token, "put", str(tmp_path / "up"))
    read_alike(admin, put["uuid"], FILES)
    script = ("printf aaaaaaaaaaaaaaa > a.txt && : > b.txt && head -c 105 /dev/zero | tr '\\0' c > c.txt"
              " && mkdir -p sub/deep empty && : > sub/deep/e.txt")
    request = submit(admin, ["sh", "-c", script], use_existing=False)
    done = wait_final(admin, request["uuid"], timeout=120)
    assert done["output_uuid"], done
    read_alike(admin, done["output_uuid"], {"a.txt": FILES["a.txt"], "b.txt": b"", "c.txt": FILES["c.txt"],
                                            "sub/deep/e.txt": b""})


WORKFLOW = """\
cwlVersion: v1.2
class: Workflow
inputs: []
outputs:
  files: {type: 'File[]', outputSource: make/files}
  sub: {type: Directory, outputSource: make/sub}
steps:
  make:
    in: []
    out: [files, sub]
    run:
      class: CommandLineTool
      requirements: {ShellCommandRequirement: {}}
      inputs: []
      arguments:
        - shellQuote: false
          valueFrom: >-
            printf aaaaaaaaaaaaaaa > a.txt && : > b.txt && head -c 105 /dev/zero | tr '\\0' c > c.txt
            && mkdir -p sub/deep && : > sub/deep/e.txt && printf 'x\\n' > sub/x.txt
      outputs:
        files: {type: 'File[]', outputBinding: {glob: '*.txt'}}
        sub: {type: Directory, outputBinding: {glob: sub}}
"""


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_archi_runs_final_collection_and_its_steps_outputs_are_read_alike(site, tmp_path):
    from archipelago.cwl.runner import Runner

    admin = site["admin"]
    (tmp_path / "wf.cwl").write_text(WORKFLOW)
    (tmp_path / "job.yml").write_text("{}\n")
    runner = Runner(admin)
    outputs, status = runner.run(tmp_path / "wf.cwl", tmp_path / "job.yml")
    assert status == "success"
    expected = {"a.txt": FILES["a.txt"], "b.txt": b"", "c.txt": FILES["c.txt"], "sub/deep/e.txt": b"",
                "sub/x.txt": b"x\n"}
    read_alike(admin, outputs["_archi_output_collection"], expected)
    for step in runner.steps.values():  # each step's own output collection too
        request = admin.container_requests.get(step.request_uuid)
        read_alike(admin, request["output_uuid"])


def test_the_server_refuses_what_the_sdk_would_misread_and_the_official_client_sees_422(site):
    admin = site["admin"]
    la, lc = (f"{hashlib.md5(d).hexdigest()}+{len(d)}" for d in (FILES["a.txt"], FILES["c.txt"]))
    defect = f". {la} {EMPTY} {lc} 0:15:a.txt 15:0:b.txt 15:105:c.txt\n"
    with pytest.raises(ApiRequestError) as refused:
        admin.collections.create({"manifest_text": defect})
    assert refused.value.status == 422 and "stream .:" in str(refused.value) and "zero-length block" in str(
        refused.value)
    from googleapiclient.errors import HttpError

    with pytest.raises(HttpError) as official:
        official_api(admin).collections().create(body={"collection": {"manifest_text": defect}}).execute()
    assert official.value.resp.status == 422
