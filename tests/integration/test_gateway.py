"""A gateway over a directory on a real cluster: data registered in place (nothing copied into
Keep), read by `archi get`, the SDK and the official arv-get through `+K@<uuid>` hints; a file
changed underneath is refused, never served; the PDH is the one Keep would give the same blocks."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from archipelago.config import GatewayConfig, dump_config, load_config
from archipelago.keep.services import KeepService
from archipelago.rpc import ApiRequestError
from archipelago.run.cluster import CONFIG_NAME, init_cluster
from archipelago.run.ports import free_port
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient, Collection
from tests.support.clusters import new_user
from tests.support.http_ranges import range_server

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


PATH_GW, S3_GW, HTTP_GW = (f"z1111-bi6l4-gateway{n:08d}" for n in range(3))


@pytest.fixture(scope="module")
def site(tmp_path_factory, s3_server):
    """A cluster with three gateways: a directory, an S3 bucket (moto), a web server with ranges."""
    directory = tmp_path_factory.mktemp("gateway-cluster")
    data = tmp_path_factory.mktemp("gateway-data")
    web = tmp_path_factory.mktemp("gateway-web")
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="gateway-data")
    init_cluster(directory, "z1111")
    config = load_config(directory / CONFIG_NAME)
    with range_server(web) as web_url:
        config.gateways = [
            GatewayConfig(driver="path", root=data, listen=f"127.0.0.1:{free_port()}"),
            GatewayConfig(driver="s3", bucket="gateway-data", endpoint=s3_server, access_key="testing",
                          secret_key="testing", listen=f"127.0.0.1:{free_port()}"),
            GatewayConfig(driver="http", base_url=web_url, listen=f"127.0.0.1:{free_port()}"),
        ]
        (directory / CONFIG_NAME).write_text(dump_config(config))
        with ClusterProcess(directory) as cluster:
            yield cluster, data, web, s3_server


def grant_registering(admin: ApiClient, user: ApiClient, gateway_uuid: str) -> None:
    """Gateways have owners: a plain user registers through one only with can_write on it (auth/gateways.py)."""
    admin.links.create({"link_class": "permission", "name": "can_write", "tail_uuid": user.users.current()["uuid"],
                        "head_uuid": gateway_uuid})


def archi(cluster, token: str, *args: str, code: int = 0) -> dict:
    env = {**os.environ, "ARCHI_API_HOST": cluster.api_url, "ARCHI_API_TOKEN": token, "ARCHI_API_HOST_INSECURE": "1"}
    result = subprocess.run([str(BIN / "archi"), *args, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == code, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_registered_data_is_read_in_place_by_archi_the_sdk_and_arv_get(site, tmp_path):
    cluster, data, *_ = site
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    alice = new_user(admin, "alice")
    big = os.urandom((64 << 20) + 1000)  # two blocks
    (data / "run1" / "sub").mkdir(parents=True)
    (data / "run1" / "big.bin").write_bytes(big)
    (data / "run1" / "sub" / "small.txt").write_text("small\n")
    (data / "run1" / "sub" / "empty").write_bytes(b"")
    # gateways have owners: without can_write on the gateway, alice neither sees where its data lies
    # nor registers through it (the cluster's gateway asks the cluster's identity code)
    assert not [s for s in alice.request("GET", "keep_services/accessible")["items"] if "gateway_source" in s]
    refused = archi(cluster, alice.token, "register", "run1", "--gateway", PATH_GW, code=1)
    assert PATH_GW in refused["error"] and "can_write" in refused["error"]
    grant_registering(admin, alice, PATH_GW)
    blocks_before = sum(1 for p in (cluster.directory / "keep").rglob("*") if p.is_file())
    made = archi(cluster, alice.token, "register", "run1", "--gateway", PATH_GW, "--name", "in place")
    assert made["objects"] == 3 and made["bytes"] == len(big) + 6
    assert sum(1 for p in (cluster.directory / "keep").rglob("*") if p.is_file()) == blocks_before  # no copy
    manifest = alice.collections.get(made["uuid"])["manifest_text"]
    gateway = next(s for s in admin.request("GET", "keep_services/accessible")["items"] if s["uuid"] == PATH_GW)
    assert gateway["service_type"] == "gateway:path" and f"+K@{PATH_GW}" in manifest
    # archi get, the SDK
    archi(cluster, alice.token, "get", made["uuid"], str(tmp_path / "got"))
    assert (tmp_path / "got" / "big.bin").read_bytes() == big
    assert (tmp_path / "got" / "sub" / "small.txt").read_text() == "small\n"
    assert Collection(alice, made["uuid"]).read("sub/small.txt") == b"small\n"
    # the official arv-get follows +K@<uuid> to a service whose type starts with gateway:
    arv_get = shutil.which("arv-get", path=str(BIN))
    if arv_get is None:
        pytest.skip("arv-get not installed")
    env = {**os.environ, "ARVADOS_API_HOST": cluster.api_url.removeprefix("https://"),
           "ARVADOS_API_TOKEN": alice.token, "ARVADOS_API_HOST_INSECURE": "1", "HOME": str(tmp_path)}
    subprocess.run([arv_get, f"{made['uuid']}/big.bin", str(tmp_path / "arv.bin")], env=env, check=True,
                   capture_output=True, timeout=120)
    assert (tmp_path / "arv.bin").read_bytes() == big
    # alice may register through the path gateway, not move blocks into the S3 one
    refused = archi(cluster, alice.token, "keep", "move", made["uuid"], "--to", S3_GW, code=1)
    assert S3_GW in refused["error"] and "can_write" in refused["error"]
    assert alice.collections.get(made["uuid"])["manifest_text"].count(f"+K@{PATH_GW}") == 3


def test_the_pdh_is_the_one_keep_gives_the_same_blocks(site, tmp_path):
    cluster, data, *_ = site
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    (data / "one.csv").write_text("a,b\n1,2\n")
    registered = archi(cluster, admin.token, "register", "one.csv", "--gateway", PATH_GW)
    (tmp_path / "one.csv").write_text("a,b\n1,2\n")
    put = archi(cluster, admin.token, "put", str(tmp_path / "one.csv"))
    assert registered["portable_data_hash"] == put["portable_data_hash"]


def test_a_changed_file_is_refused_never_served(site, tmp_path):
    cluster, data, *_ = site
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    (data / "changes.txt").write_text("original\n")
    made = archi(cluster, admin.token, "register", str(data / "changes.txt"))  # by where it is
    (data / "changes.txt").write_text("tampered\n")  # same size, other bytes
    failed = archi(cluster, admin.token, "get", made["uuid"], str(tmp_path / "out"), code=1)
    assert "changes.txt" in failed["error"] and made["uuid"] in failed["error"]
    assert not (tmp_path / "out" / "changes.txt").exists()


def test_reads_need_a_valid_signature_and_paths_stay_under_the_root(site):
    cluster, data, *_ = site
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    alice = new_user(admin, "alice")
    (data / "private.txt").write_text("mine\n")
    made = archi(cluster, admin.token, "register", "private.txt", "--gateway", PATH_GW)
    with pytest.raises(ApiRequestError) as info:
        Collection(alice, made["uuid"]).read("private.txt")  # alice may not read the collection
    assert info.value.status in (403, 404)
    refused = archi(cluster, admin.token, "register", "../etc", "--gateway", PATH_GW, code=2)
    assert "outside" in refused["error"]
    unknown = archi(cluster, admin.token, "register", "s3://another-bucket/run1", code=2)
    assert "no gateway of this cluster serves s3://another-bucket/run1" in unknown["error"]
    assert f"{S3_GW} serves s3://gateway-data" in unknown["error"]  # what it could have meant


def test_s3_and_http_data_mixed_with_keep_in_one_collection(site, tmp_path):
    cluster, _, web, s3_url = site
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    in_s3 = os.urandom(3 << 20)
    s3.put_object(Bucket="gateway-data", Key="cohort/a.bin", Body=in_s3)
    s3.put_object(Bucket="gateway-data", Key="cohort/notes/b.txt", Body=b"from s3\n")
    (web / "ref.fa").write_bytes(b">chr1\nACGT\n" * 1000)
    from_s3 = archi(cluster, admin.token, "register", "s3://gateway-data/cohort")  # the gateway found by its bucket
    web_url = next(s["gateway_source"] for s in admin.request("GET", "keep_services/accessible")["items"]
                   if s["uuid"] == HTTP_GW)
    from_web = archi(cluster, admin.token, "register", f"{web_url}/ref.fa")
    assert from_s3["objects"] == 2 and from_web["objects"] == 1
    manifest = admin.collections.get(from_s3["uuid"])["manifest_text"]
    assert f"+K@{S3_GW}" in manifest and "testing" not in json.dumps(admin.config())  # no credentials out
    mixed = Collection(admin)
    mixed.write("local.txt", b"in keep\n")
    for source, name in ((from_s3["uuid"], "a.bin"), (from_s3["uuid"], "notes/b.txt"), (from_web["uuid"], "ref.fa")):
        mixed.link(name, Collection(admin, source).segments(name))
    record = mixed.save_new("keep + s3 + http")
    archi(cluster, admin.token, "get", record["uuid"], str(tmp_path / "mixed"))
    assert (tmp_path / "mixed" / "a.bin").read_bytes() == in_s3
    assert (tmp_path / "mixed" / "notes" / "b.txt").read_bytes() == b"from s3\n"
    assert (tmp_path / "mixed" / "ref.fa").read_bytes() == (web / "ref.fa").read_bytes()
    assert (tmp_path / "mixed" / "local.txt").read_bytes() == b"in keep\n"
    # the official tools read the mixed collection unchanged: arv-get, and the Python SDK
    names = ("a.bin", "notes/b.txt", "ref.fa", "local.txt")
    expected = {name: (tmp_path / "mixed" / name).read_bytes() for name in names}
    env = {**os.environ, "ARVADOS_API_HOST": cluster.api_url.removeprefix("https://"),
           "ARVADOS_API_TOKEN": admin.token, "ARVADOS_API_HOST_INSECURE": "1", "HOME": str(tmp_path)}
    (tmp_path / "arv").mkdir()
    got = subprocess.run([str(BIN / "arv-get"), "-r", f"{record['uuid']}/", str(tmp_path / "arv") + "/"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stderr
    assert {name: (tmp_path / "arv" / name).read_bytes() for name in expected} == expected
    read_by_sdk = subprocess.run([sys.executable, "-c", OFFICIAL_SDK_READS, record["uuid"], *expected], env=env,
                                 check=True, capture_output=True, text=True, timeout=120).stdout
    assert json.loads(read_by_sdk) == {name: hashlib.md5(data).hexdigest() for name, data in expected.items()}
    # an object changed underneath before anyone read it is refused (what was read and verified
    # stays in the gateway's cache: those bytes are still the block's)
    s3.put_object(Bucket="gateway-data", Key="later/c.txt", Body=b"original\n")
    later = archi(cluster, admin.token, "register", "later", "--gateway", S3_GW)
    s3.put_object(Bucket="gateway-data", Key="later/c.txt", Body=b"changed!\n")  # same size
    failed = archi(cluster, admin.token, "get", later["uuid"], str(tmp_path / "again"), code=1)
    assert "later/c.txt" in failed["error"]


def test_a_move_cut_short_resumes_without_sending_what_the_destination_holds(site):
    import urllib3

    cluster, *_ = site
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    alpha, beta = Collection(admin), Collection(admin)
    alpha.write("a.txt", b"alpha, half moved\n")
    beta.write("b.txt", b"beta, not yet\n")
    both = Collection(admin)
    for part, name in ((alpha, "a.txt"), (beta, "b.txt")):
        both.link(name, Collection(admin, part.save_new(f"part {name}")["uuid"]).segments(name))
    made = both.save_new("archived in two steps")
    s3_gateway = next(KeepService.from_record(g) for g in admin.request("GET", "keep_services/accessible")["items"]
                      if g["uuid"] == S3_GW)
    md5 = hashlib.md5(b"alpha, half moved\n").hexdigest()
    stored = urllib3.request("PUT", f"{s3_gateway.url}/{md5}", body=b"alpha, half moved\n",
                             headers={"Authorization": f"Bearer {admin.token}"})  # the first move got this far
    assert stored.status == 200
    for block in (cluster.directory / "keep").rglob(f"{md5}*"):
        block.unlink()  # and a.txt's block is nowhere else now: sending it again would fail
    moved = archi(cluster, admin.token, "keep", "move", made["uuid"], "--to", S3_GW)
    assert moved["blocks"] == 2 and moved["portable_data_hash"] == made["portable_data_hash"]
    assert Collection(admin, made["uuid"]).read("a.txt") == b"alpha, half moved\n"  # from the S3 gateway


OFFICIAL_SDK_READS = """
import hashlib, json, sys, arvados.collection
reader = arvados.collection.CollectionReader(sys.argv[1])
print(json.dumps({name: hashlib.md5(reader.open(name, "rb").read()).hexdigest() for name in sys.argv[2:]}))
"""


def test_moving_into_keep_keeps_the_pdh_and_does_not_disturb_a_reader(site, tmp_path):
    cluster, data, *_ = site
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    payload = os.urandom((64 << 20) + 4096)  # two blocks
    (data / "to-move").mkdir()
    (data / "to-move" / "big.bin").write_bytes(payload)
    made = archi(cluster, admin.token, "register", "to-move", "--gateway", PATH_GW)
    reader = Collection(admin, made["uuid"])  # signed locators in hand, through the gateway
    keep = admin.keep()
    segments = reader.segments("big.bin")
    first = bytes(keep.get(segments[0][0]))  # a read in the middle: one block done
    moved = archi(cluster, admin.token, "keep", "move", made["uuid"], "--to", "keep")
    assert moved["blocks"] == 2 and moved["portable_data_hash"] == made["portable_data_hash"]
    assert first + bytes(keep.get(segments[1][0])) == payload  # the reader goes on, unchanged
    manifest = admin.collections.get(made["uuid"])["manifest_text"]
    assert "+K@" not in manifest  # native Keep now
    (data / "to-move" / "big.bin").unlink()  # the external copy can go: Keep serves it
    archi(cluster, admin.token, "get", made["uuid"], str(tmp_path / "after"))
    assert (tmp_path / "after" / "big.bin").read_bytes() == payload
    # and back out, to the S3 gateway's bucket: the PDH still the same, the blocks held there now
    out = archi(cluster, admin.token, "keep", "move", made["uuid"], "--to", S3_GW)
    assert out["blocks"] == 2 and out["portable_data_hash"] == made["portable_data_hash"]
    assert admin.collections.get(made["uuid"])["manifest_text"].count(f"+K@{S3_GW}") == 2
    assert Collection(admin, made["uuid"]).read("big.bin") == payload
    refused = archi(cluster, admin.token, "keep", "move", made["uuid"], "--to", HTTP_GW, code=1)
    assert "read-only" in refused["error"]


def test_pandas_reads_a_gateway_backed_file_through_archi_urls_fetching_only_what_it_touches(site):
    import fsspec
    import pandas

    cluster, data, *_ = site
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    (data / "tables").mkdir()
    (data / "tables" / "cohort.csv").write_text("age,effect\n51,0.2\n63,0.4\n")
    (data / "tables" / "wide.bin").write_bytes(b"a" * (64 << 20) + b"second block")
    made = archi(cluster, admin.token, "register", "tables", "--gateway", PATH_GW)
    options = {"host": cluster.api_url, "token": admin.token, "insecure": True}
    frame = pandas.read_csv(f"archi://{made['uuid']}/cohort.csv", storage_options=options)
    assert list(frame["age"]) == [51, 63] and frame["effect"].sum() == pytest.approx(0.6)
    fs = fsspec.filesystem("archi", **options)
    assert sorted(fs.ls(made["uuid"], detail=False)) == [f"{made['uuid']}/cohort.csv", f"{made['uuid']}/wide.bin"]
    with fs.open(f"{made['uuid']}/wide.bin", block_size=1 << 16) as handle:
        handle.seek(64 << 20)
        assert handle.read(12) == b"second block"
        first, second = (loc.split("+")[0] for loc, _, _ in handle.segments)
        assert handle.keep.cache.get(second) is not None and handle.keep.cache.get(first) is None  # one block moved
    with fsspec.open(f"keep://{made['portable_data_hash']}/cohort.csv", "rt", **options) as handle:
        assert handle.readline() == "age,effect\n"


def test_pyarrow_reads_a_parquet_footer_through_archi_urls_fetching_only_the_last_block(site):
    import fsspec
    import pandas
    import pyarrow as pa
    import pyarrow.parquet as pq

    cluster, data, *_ = site
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    (data / "parquet").mkdir()
    samples = [f"s{i}" for i in range(4)]
    table = pa.table({"sample": samples, "reads": [os.urandom(17 << 20) for _ in samples]})  # 68 MiB: two blocks
    pq.write_table(table, data / "parquet" / "cohort.parquet", compression="none")
    made = archi(cluster, admin.token, "register", "parquet", "--gateway", PATH_GW)
    options = {"host": cluster.api_url, "token": admin.token, "insecure": True}
    with fsspec.filesystem("archi", **options).open(f"{made['uuid']}/cohort.parquet", block_size=1 << 16) as handle:
        assert pq.ParquetFile(handle).metadata.num_rows == 4  # the footer, at the end of the file
        first, last = (loc.split("+")[0] for loc, _, _ in handle.segments)
        assert handle.keep.cache.get(last) is not None and handle.keep.cache.get(first) is None
    frame = pandas.read_parquet(f"archi://{made['uuid']}/cohort.parquet", columns=["sample"], storage_options=options)
    assert list(frame["sample"]) == samples


def test_a_standalone_gateway_runs_as_its_own_process(tmp_path):
    directory, data = tmp_path / "cluster", tmp_path / "data"
    data.mkdir()
    (data / "x.txt").write_text("served by its own process\n")
    init_cluster(directory, "z1111")
    config = load_config(directory / CONFIG_NAME)
    config.gateways = [GatewayConfig(driver="path", root=data, listen=f"127.0.0.1:{free_port()}", standalone=True)]
    (directory / CONFIG_NAME).write_text(dump_config(config))
    with ClusterProcess(directory) as cluster:
        gateway = subprocess.Popen([str(BIN / "archi"), "gateway", "--config", str(directory / CONFIG_NAME)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert "listening on" in gateway.stdout.readline()
            admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
            made = archi(cluster, admin.token, "register", "x.txt")
            assert Collection(admin, made["uuid"]).read("x.txt") == b"served by its own process\n"
        finally:
            gateway.terminate()
            assert gateway.wait(10) == 0


def test_another_cluster_reads_gateway_data_through_the_federation(tmp_path):
    from archipelago.run.federation import init_federation

    data = tmp_path / "data"
    data.mkdir()
    (data / "shared.txt").write_text("held by z1111's gateway\n")
    members = init_federation(tmp_path / "fed", 2)
    home = members[0].directory / CONFIG_NAME
    config = load_config(home)
    config.gateways = [GatewayConfig(driver="path", root=data, listen=f"127.0.0.1:{free_port()}")]
    home.write_text(dump_config(config))
    with ClusterProcess(members[0].directory) as z1111, ClusterProcess(members[1].directory) as z2222:
        admin1 = ApiClient(z1111.api_url, z1111.admin_token, insecure=True)
        alice = new_user(admin1, "alice")
        grant_registering(admin1, alice, PATH_GW)
        made = archi(z1111, alice.token, "register", "shared.txt")
        # alice, at z2222 with her z1111 token: the collection is found at z1111, its blocks read through
        # z2222's keepstore, which fetches them from z1111 (+R), where the gateway serves them
        at_z2222 = ApiClient(z2222.api_url, alice.token, insecure=True)
        assert Collection(at_z2222, made["uuid"]).read("shared.txt") == b"held by z1111's gateway\n"
        # archi copy reads the blocks through the gateway and stores them in z2222's own Keep:
        # the copy has the same PDH and no hint naming a service z2222 does not have
        copied = archi(z1111, alice.token, "copy", made["uuid"], "z2222")
        assert copied["copied"] and copied["portable_data_hash"] == made["portable_data_hash"]
        assert "+K@" not in at_z2222.collections.get(copied["uuid"])["manifest_text"]
        (data / "shared.txt").unlink()  # the gateway's data gone: the copy stands on its own
        assert Collection(at_z2222, copied["uuid"]).read("shared.txt") == b"held by z1111's gateway\n"


def test_a_container_reads_gateway_backed_data_through_its_mounts(site):
    from tests.support.compute import submit, wait_final

    cluster, data, *_ = site
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    (data / "for-compute").mkdir()
    (data / "for-compute" / "rows.csv").write_text("a\nb\nc\n")
    made = archi(cluster, admin.token, "register", str(data / "for-compute"))
    request = submit(admin, ["sh", "-c", "wc -l < /in/rows.csv > count.txt"], use_existing=False,
                     mounts={"/out": {"kind": "tmp", "capacity": 1 << 20},
                             "/in": {"kind": "collection", "portable_data_hash": made["portable_data_hash"]}})
    done = wait_final(admin, request["uuid"], timeout=120)
    assert Collection(admin, done["output_uuid"]).read("count.txt").strip() == b"3"


def test_copies_a_move_left_behind_are_released_after_a_signing_ttl_unless_still_read(tmp_path):
    """Signatures last 20 s here: a copy a move left behind is still served right after the move (a
    reader holding its signed locators goes on), then released — trashed in Keep, dropped from a
    gateway with the object it wrote — unless another collection still reads that copy."""
    import time

    import urllib3

    from archipelago.sdk.gateway import move

    data = tmp_path / "archive"
    data.mkdir()
    init_cluster(tmp_path / "c", "z1111")
    config = load_config(tmp_path / "c" / CONFIG_NAME)
    config.collections.blob_signing_ttl = 20  # the moves and the read below fit well within it
    config.collections.blob_trash_check_interval = 0.5
    config.gateways = [GatewayConfig(driver="path", root=data, listen=f"127.0.0.1:{free_port()}")]
    (tmp_path / "c" / CONFIG_NAME).write_text(dump_config(config))
    with ClusterProcess(tmp_path / "c") as cluster:
        admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
        archived_alone, kept_by_other = os.urandom(1 << 20), os.urandom(1 << 20)
        cold, shared_cold, other = (Collection(admin) for _ in range(3))  # a block each
        cold.write("alone.bin", archived_alone)
        shared_cold.write("shared.bin", kept_by_other)
        other.write("same.bin", kept_by_other)  # the same block, read from Keep by another collection
        cold, shared_cold = cold.save_new("cold data"), shared_cold.save_new("cold, shared")
        other.save_new("still in keep")
        alone, shared = (f"{hashlib.md5(d).hexdigest()}+{len(d)}" for d in (archived_alone, kept_by_other))

        def in_keep(locator: str) -> bool:
            index = urllib3.request("GET", f"{cluster.keep_url}/index/{locator[:32]}",
                                    headers={"Authorization": f"Bearer {config.system_root_token}"})
            return index.data.decode().startswith(locator + " ")

        def eventually(condition) -> None:  # released once the signatures' 20 s are over, so well within 120 s
            deadline = time.monotonic() + 120
            while not condition():
                assert time.monotonic() < deadline, "not released in 120 s"
                time.sleep(0.2)

        old = Collection(admin, cold["uuid"]).segments("alone.bin")[0][0]  # a reader's signed locator
        archived = move(admin, cold["uuid"], PATH_GW)
        assert archived["portable_data_hash"] == cold["portable_data_hash"]
        move(admin, shared_cold["uuid"], PATH_GW)
        shared_due = time.monotonic() + config.collections.blob_signing_ttl  # its copy's nomination is due by then
        assert bytes(admin.keep(cache=None).get(old)) == archived_alone  # the old copy still serves
        eventually(lambda: not in_keep(alone))
        # rounds after it was due, the shared block...
        time.sleep(max(0.0, shared_due - time.monotonic()) + 3 * config.collections.blob_trash_check_interval)
        assert in_keep(shared)  # ...is kept: another collection reads it from Keep
        assert Collection(admin, cold["uuid"]).read("alone.bin") == archived_alone  # from the gateway now
        # and back: the gateway's own objects are deleted once released, registered data never is
        (data / "registered.txt").write_text("registered in place\n")
        assert sorted(p.name for p in (data / "archipelago-blocks").iterdir()) == sorted(
            [alone[:32], shared[:32]])
        move(admin, cold["uuid"], "keep")
        move(admin, shared_cold["uuid"], "keep")
        eventually(lambda: not (data / "archipelago-blocks" / alone[:32]).exists()
                   and not (data / "archipelago-blocks" / shared[:32]).exists())
        assert Collection(admin, cold["uuid"]).read("alone.bin") == archived_alone
        assert (data / "registered.txt").exists()
