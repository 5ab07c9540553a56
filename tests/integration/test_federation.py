"""Identity across a real 3-cluster federation on loopback: salted tokens validated by their home."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from archipelago.formats.tokens import salt_token
from archipelago.sdk import ApiClient, ApiRequestError
from tests.support.clusters import REFRESH, new_user, running_federation

pytestmark = pytest.mark.integration
@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    with running_federation(tmp_path_factory.mktemp("fed"), 3) as federation:
        yield federation


def as_user(admin: ApiClient, url: str, token: str) -> ApiClient:
    return ApiClient(url, token, insecure=True)


def test_a_salted_token_identifies_its_user_at_the_target_only(federation):
    home, target, other = federation["z1111"], federation["z2222"], federation["z3333"]
    alice = new_user(home, "alice")
    me = alice.users.current()
    salted = salt_token(alice.token, "z2222")
    assert as_user(home, target.base, salted).users.current()["uuid"] == me["uuid"]  # same UUID everywhere
    with pytest.raises(ApiRequestError) as info:  # leaked by z2222, useless at z3333
        as_user(home, other.base, salted).users.current()
    assert info.value.status == 401
    with pytest.raises(ApiRequestError) as info:  # useless at home for anything but identity
        as_user(home, home.base, salted).collections.list()
    assert info.value.status == 401


def test_remote_users_work_like_local_ones(federation):
    home, target = federation["z1111"], federation["z2222"]
    alice = new_user(home, "alice")
    alice_at_target = as_user(home, target.base, salt_token(alice.token, "z2222"))
    me = alice_at_target.users.current()["uuid"]
    mine = alice_at_target.collections.create({"name": "made remotely", "manifest_text": ""})
    assert mine["owner_uuid"] == me and mine["uuid"].startswith("z2222-")
    # a local user of z2222 shares a project with the remote user
    bob = new_user(target, "bob")
    project = bob.groups.create({"name": "shared", "group_class": "project"})["uuid"]
    inside = bob.collections.create({"name": "data", "manifest_text": "", "owner_uuid": project})["uuid"]
    with pytest.raises(ApiRequestError) as info:
        alice_at_target.collections.get(inside)
    assert info.value.status == 404
    bob.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": me, "head_uuid": project})
    assert alice_at_target.collections.get(inside)["uuid"] == inside


def test_revocation_at_home_reaches_other_clusters_within_the_refresh_period(federation):
    home, target = federation["z1111"], federation["z2222"]
    alice = new_user(home, "alice")
    alice_at_target = as_user(home, target.base, salt_token(alice.token, "z2222"))
    assert alice_at_target.users.current()
    alice.api_client_authorizations.delete(alice.api_client_authorizations.current()["uuid"])
    time.sleep(REFRESH + 0.5)
    with pytest.raises(ApiRequestError) as info:
        alice_at_target.users.current()
    assert info.value.status == 401


def test_unknown_cluster_tokens_are_refused(federation):
    with pytest.raises(ApiRequestError) as info:
        as_user(federation["z1111"], federation["z2222"].base,
                "v2/z9999-gj3su-000000000000001/secretsecretsecretsecret").users.current()
    assert info.value.status == 401


def test_objects_are_found_where_they_live(federation):
    home, target, other = federation["z1111"], federation["z2222"], federation["z3333"]
    alice = new_user(home, "alice")
    # alice writes a collection on z2222 while talking to her home cluster
    remote_record = alice.request("POST", "collections", params={"cluster_id": "z2222"},
                                  body={"collection": {"name": "at z2222", "manifest_text":
                                                       ". d41d8cd98f00b204e9800998ecf8427e+0 0:0:empty\n"}})
    uuid, pdh = remote_record["uuid"], remote_record["portable_data_hash"]
    assert uuid.startswith("z2222-4zz18-")
    # by UUID through home: routed to z2222
    assert alice.collections.get(uuid)["uuid"] == uuid
    alice.collections.update(uuid, {"description": "updated through z1111"})
    at_target = as_user(home, target.base, salt_token(alice.token, "z2222"))
    assert at_target.collections.get(uuid)["description"] == "updated through z1111"
    # by PDH: not here, found on z2222 and verified
    assert alice.collections.get(pdh)["portable_data_hash"] == pdh
    # a list by UUIDs is split per cluster and merged
    local = alice.collections.create({"name": "at home", "manifest_text": ""})["uuid"]
    both = alice.collections.list([["uuid", "in", [uuid, local]]])["items"]
    assert sorted(c["uuid"] for c in both) == sorted([uuid, local])
    # z3333 has never seen it
    with pytest.raises(ApiRequestError) as info:
        as_user(home, other.base, salt_token(alice.token, "z3333")).collections.get(
            "0123456789abcdef0123456789abcdef+0")
    assert info.value.status == 404


def test_remote_manifests_carry_remote_signatures(federation):
    from archipelago.sdk import Collection

    home, target = federation["z1111"], federation["z2222"]
    alice = new_user(home, "alice")
    at_target = as_user(home, target.base, salt_token(alice.token, "z2222"))
    collection = Collection(at_target)  # blocks go to z2222's keepstore
    collection.write("x.txt", b"remote bytes\n")
    record = collection.save_new("signed at z2222")
    assert "+A" in record["manifest_text"]
    # read through her home cluster: the signature comes back as +Rz2222-
    seen = alice.collections.get(record["uuid"])
    assert "+Rz2222-" in seen["manifest_text"] and "+A" not in seen["manifest_text"]
    assert seen["portable_data_hash"] == record["portable_data_hash"]


def keep_metrics(url: str) -> dict[str, int]:
    import urllib3

    text = urllib3.request("GET", f"{url}/metrics").data.decode()
    return {line.split(" ")[0]: int(line.split(" ")[1]) for line in text.splitlines() if not line.startswith("#")}


def test_remote_blocks_are_fetched_once_and_copied_home_on_save(federation, tmp_path):
    from archipelago.sdk import Collection

    home, target = federation["z1111"], federation["z2222"]
    alice = new_user(home, "alice")
    at_target = as_user(home, target.base, salt_token(alice.token, "z2222"))
    payload = os.urandom(300_000)
    remote = Collection(at_target)
    remote.write("data.bin", payload)
    uuid = remote.save_new("remote data")["uuid"]
    home_keep = home.keep().services[0].url
    target_keep = target.keep().services[0].url
    key = 'archipelago_keep_remote_fetched_bytes_total{cluster="z2222"}'
    before = keep_metrics(home_keep).get(key, 0)
    # read through home: home's keepstore fetches from z2222 with alice's token salted for z2222
    assert Collection(alice, uuid).read("data.bin") == payload
    after_first = keep_metrics(home_keep)[key]
    assert after_first - before == len(payload)
    served = keep_metrics(target_keep)['archipelago_keep_served_bytes_total{cluster="z1111"}']
    assert served >= len(payload)
    # a second read crosses no cluster boundary
    fresh = ApiClient(alice.base, alice.token, insecure=True)  # no client-side cache either
    assert Collection(fresh, uuid).read("data.bin") == payload
    assert keep_metrics(home_keep)[key] == after_first
    # saving at home converts +R to local +A: the blocks are copied here and signed here
    copy = Collection(alice, uuid)
    saved = copy.save_new("copied home")
    assert saved["uuid"].startswith("z1111-") and "+R" not in saved["manifest_text"]
    assert Collection(alice, saved["uuid"]).read("data.bin") == payload


def test_a_block_already_held_here_is_vouched_for_only_with_the_remote_clusters_consent(federation):
    from archipelago.keep.errors import KeepReadError
    from archipelago.sdk import Collection

    home, target = federation["z1111"], federation["z2222"]
    alice, mallory = new_user(home, "alice"), new_user(home, "mallory")
    payload = os.urandom(200_000)
    here = Collection(alice)  # the same bytes at home ...
    here.write("a.bin", payload)
    here.save_new("at home")
    there = Collection(as_user(home, target.base, salt_token(alice.token, "z2222")))  # ... and at z2222
    there.write("a.bin", payload)
    uuid = there.save_new("at z2222")["uuid"]
    remote_locator = Collection(alice, uuid).segments("a.bin")[0][0]
    assert "+Rz2222-" in remote_locator
    home_keep = home.keep().services[0].url
    key = 'archipelago_keep_remote_fetched_bytes_total{cluster="z2222"}'
    before = keep_metrics(home_keep).get(key, 0)
    local = alice.keep(cache=None).local_copy(remote_locator)  # held here: z2222 is only asked (HEAD)
    assert "+A" in local and keep_metrics(home_keep).get(key, 0) == before
    # a made-up +R hint for a block held here gets no local signature: z2222 refuses it
    forged = remote_locator.split("+R")[0] + "+Rz2222-" + "0" * 40 + "@" + remote_locator.rsplit("@", 1)[1]
    with pytest.raises(KeepReadError):
        mallory.keep(cache=None).local_copy(forged)


def test_residency_keeps_restricted_data_home_while_derived_results_travel(federation):
    import urllib3

    from archipelago.sdk import Collection

    home, target = federation["z1111"], federation["z2222"]
    alice = new_user(home, "alice")
    alice_uuid = alice.users.current()["uuid"]
    with pytest.raises(ApiRequestError) as info:  # only admins set policies
        alice.groups.create({"name": "mine", "group_class": "project", "residency": "cluster"})
    assert info.value.status == 403
    private = home.groups.create({"name": f"private-{alice_uuid[-6:]}", "group_class": "project",
                                  "owner_uuid": alice_uuid, "residency": "cluster"})["uuid"]
    raw = Collection(alice)
    raw.write("cohort.csv", b"id,genotype\n" + os.urandom(1000))
    record = raw.save_new("cohort", owner_uuid=private)
    assert Collection(alice, record["uuid"]).read("cohort.csv").startswith(b"id,genotype")  # inside: fine
    # bob, a user of z2222, is given read access to the private project at z1111
    bob = new_user(target, "bob")
    bob_uuid = bob.users.current()["uuid"]
    bob_visiting = as_user(home, home.base, salt_token(bob.token, "z1111"))
    assert bob_visiting.users.current()["uuid"] == bob_uuid  # mirrored at z1111
    alice.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": bob_uuid,
                        "head_uuid": private})
    # from outside — bob through his own cluster's API, or visiting z1111 directly — refused, naming the policy
    for reader in (bob, bob_visiting):
        with pytest.raises(ApiRequestError) as info:
            reader.collections.get(record["uuid"])
        assert info.value.status == 403 and "residency policy 'cluster'" in info.value.message
    with pytest.raises(ApiRequestError) as info:
        bob.collections.get(record["portable_data_hash"])
    assert info.value.status == 403
    # listing shows that it exists, never its manifest, whatever fields are selected
    for select in (None, ["uuid", "manifest_text"]):
        listed = bob_visiting.collections.list([["uuid", "=", record["uuid"]]], select=select)["items"]
        assert [i["uuid"] for i in listed] == [record["uuid"]] and "manifest_text" not in listed[0]
    # another cluster's keepstore asking for the bytes directly is refused too
    locator = record["manifest_text"].split(" ")[1]
    deadline = time.monotonic() + 30  # the keepstore refreshes its list of restricted blocks every second
    while (resp := urllib3.request("GET", f"{home.keep().services[0].url}/{locator}", headers={
            "Authorization": f"Bearer {alice.token}", "X-Archipelago-Cluster": "z2222"})).status != 403:
        assert time.monotonic() < deadline, f"the keepstore never refused the restricted block: {resp.status}"
        time.sleep(0.1)
    assert b"residency" in resp.data
    # a result derived from it (new data, no policy), shared the same way, travels
    results = alice.groups.create({"name": "results", "group_class": "project"})["uuid"]
    alice.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": bob_uuid,
                        "head_uuid": results})
    summary = Collection(alice)
    summary.write("summary.txt", b"n=1000\n")
    derived = summary.save_new("summary", owner_uuid=results)
    seen = bob.collections.get(derived["uuid"])
    assert seen["portable_data_hash"] == derived["portable_data_hash"] and "+Rz1111-" in seen["manifest_text"]


def test_a_relay_never_passes_on_or_caches_a_block_that_fails_its_md5(federation, tmp_path):
    import urllib3
    import xxhash

    from archipelago.keepstore.volumes.directory import CHECKSUM_XATTR
    from archipelago.sdk import Collection

    home, target = federation["z1111"], federation["z2222"]
    alice = new_user(home, "alice")
    at_target = as_user(home, target.base, salt_token(alice.token, "z2222"))
    payload = os.urandom(5 << 20)
    remote = Collection(at_target)
    remote.write("data.bin", payload)
    uuid = remote.save_new("to be tampered with")["uuid"]
    md5 = remote.segments("data.bin")[0][0][:32]
    # tamper at z2222 so thoroughly that its own fast check passes: data and stored checksum both changed
    cluster_dir = Path(federation["processes"]["z2222"].directory)
    [path] = [p for p in cluster_dir.rglob(md5) if p.is_file()]
    tampered = bytearray(path.read_bytes())
    tampered[12345] ^= 0xFF
    path.write_bytes(tampered)
    os.setxattr(path, CHECKSUM_XATTR, xxhash.xxh3_128(bytes(tampered)).hexdigest().encode())
    locator = alice.collections.get(uuid)["manifest_text"].split(" ")[1]
    home_keep = home.keep().services[0].url
    with pytest.raises(urllib3.exceptions.HTTPError, match="IncompleteRead"):  # cut before the last piece
        urllib3.request("GET", f"{home_keep}/{locator}", headers={"Authorization": f"Bearer {alice.token}"},
                        retries=False)
    from archipelago.keep.errors import KeepReadError

    with pytest.raises(KeepReadError):  # and nothing bad was cached: the next read fails the same way
        Collection(ApiClient(alice.base, alice.token, insecure=True), uuid).read("data.bin")


def _archi(env: dict[str, str], *args: str, expect: int = 0) -> dict:
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "archipelago", *args, "--json"], env=env, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == expect, out.stderr
    return json.loads(out.stdout) if expect == 0 else {"stderr": out.stdout + out.stderr}


def _env_for(client: ApiClient) -> dict[str, str]:
    return {**os.environ, "ARCHI_API_HOST": client.base, "ARCHI_API_TOKEN": client.token,
            "ARCHI_API_HOST_INSECURE": "1"}


def test_archi_copy_copies_a_collection_once_and_the_copy_reads_back(federation):
    from archipelago.sdk import Collection

    home, target = federation["z1111"], federation["z2222"]
    alice = new_user(home, "alice")
    original = Collection(alice)
    original.write("a/x.txt", b"to be copied\n")
    original.write("big.bin", os.urandom(2 << 20))
    record = original.save_new("to copy")
    env = _env_for(alice)
    first = _archi(env, "copy", record["uuid"], "z2222")
    assert first["copied"] is True and first["uuid"].startswith("z2222-") and first["bytes_sent"] > 2 << 20
    assert first["portable_data_hash"] == record["portable_data_hash"]
    again = _archi(env, "copy", record["uuid"], "z2222")  # the content is there already: nothing moves
    assert again["copied"] is False and again["uuid"] == first["uuid"] and again["bytes_sent"] == 0
    at_target = as_user(home, target.base, salt_token(alice.token, "z2222"))
    assert Collection(at_target, first["uuid"]).read("a/x.txt") == b"to be copied\n"
    assert "not a collection, project or workflow" in _archi(env, "copy", "nonsense", "z2222", expect=2)["stderr"]


def test_archi_copy_a_project_recursively_with_its_workflow_and_its_dependencies(federation):
    from archipelago.sdk import Collection

    home, target = federation["z1111"], federation["z2222"]
    alice = new_user(home, "alice")
    me = alice.users.current()["uuid"]
    study = alice.groups.create({"name": "study", "group_class": "project"})["uuid"]
    raw = alice.groups.create({"name": "raw", "group_class": "project", "owner_uuid": study})["uuid"]
    shared_block = os.urandom(3 << 20)
    first = Collection(alice)
    first.write("reads.bin", shared_block)
    first.save_new("run 1", owner_uuid=raw)
    second = Collection(alice)  # the same bytes under another name: another PDH, the same block, sent once
    second.write("renamed.bin", shared_block)
    second.save_new("run 2", owner_uuid=raw)
    # the workflow's script and reference live elsewhere (alice's home project), named by PDH and by UUID
    script = Collection(alice)
    script.write("extract.py", b"print('extract')\n")
    script_pdh = script.save_new("scripts")["portable_data_hash"]
    reference = Collection(alice)
    reference.write("ref.fa", b">chr1\nACGT\n")
    reference_uuid = reference.save_new("reference")["uuid"]
    def file_input(location: str) -> dict:
        return {"type": "File", "default": {"class": "File", "location": location}}

    definition = json.dumps({
        "cwlVersion": "v1.2", "class": "CommandLineTool", "baseCommand": "python", "outputs": {},
        "inputs": {"script": file_input(f"keep:{script_pdh}/extract.py"),
                   "ref": file_input(f"keep:{reference_uuid}/ref.fa")},
    })
    alice.workflows.create({"name": "extract", "definition": definition, "owner_uuid": study})

    env = _env_for(alice)
    report = _archi(env, "copy", study, "z2222")
    assert report["kind"] == "project" and report["uuid"].startswith("z2222-j7d0g-") and report["copied"]
    assert report["blocks_reused"] >= 1 and report["bytes_sent"] < 2 * len(shared_block)
    kinds = sorted(o["kind"] for o in report["objects"] if o["created"])
    assert kinds == ["collection"] * 4 + ["project"] * 2 + ["workflow"]
    at_target = as_user(home, target.base, salt_token(alice.token, "z2222"))
    copied_study = at_target.groups.get(report["uuid"])
    assert copied_study["name"] == "study" and copied_study["owner_uuid"] == me
    copied_raw = at_target.groups.list([["owner_uuid", "=", copied_study["uuid"]]])["items"]
    assert [g["name"] for g in copied_raw] == ["raw"]
    runs = at_target.collections.list([["owner_uuid", "=", copied_raw[0]["uuid"]]], order=["name asc"])["items"]
    assert [c["name"] for c in runs] == ["run 1", "run 2"]
    assert Collection(at_target, runs[1]["uuid"]).read("renamed.bin") == shared_block
    workflows = at_target.workflows.list([["owner_uuid", "=", copied_study["uuid"]]], select=["definition"])
    copied = json.loads(workflows["items"][0]["definition"])["inputs"]
    assert copied["script"]["default"]["location"] == f"keep:{script_pdh}/extract.py"  # a content address: kept
    ref_location = copied["ref"]["default"]["location"]
    assert ref_location.startswith("keep:z2222-4zz18-")  # a UUID: rewritten to the copy's
    assert Collection(at_target, ref_location[5:32]).read("ref.fa") == b">chr1\nACGT\n"
    assert Collection(at_target, script_pdh).read("extract.py") == b"print('extract')\n"
    # a second run finds everything in place and sends nothing
    again = _archi(env, "copy", study, "z2222")
    assert again["uuid"] == report["uuid"] and again["copied"] is False and again["bytes_sent"] == 0


def test_archi_copy_brings_a_project_held_elsewhere_home(federation):
    from archipelago.sdk import Collection

    home, target = federation["z1111"], federation["z2222"]
    alice = new_user(home, "alice")
    at_target = as_user(home, target.base, salt_token(alice.token, "z2222"))
    results = at_target.groups.create({"name": "results at z2222", "group_class": "project"})["uuid"]
    output = Collection(at_target)
    output.write("summary.tsv", b"gene\tp\nBRCA2\t0.001\n")
    output.save_new("summary", owner_uuid=results)
    report = _archi(_env_for(alice), "copy", results, "z1111")  # listed at z2222, copied to her home
    assert report["uuid"].startswith("z1111-j7d0g-") and report["copied"] is True
    copied = alice.collections.list([["owner_uuid", "=", report["uuid"]]])["items"]
    assert [c["name"] for c in copied] == ["summary"]
    assert Collection(alice, copied[0]["uuid"]).read("summary.tsv") == b"gene\tp\nBRCA2\t0.001\n"
