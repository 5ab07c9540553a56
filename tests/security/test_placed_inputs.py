"""Inputs the executor copies into a container's output directory (InitialWorkDir entries) are saved
by reference when the container leaves them as they were: the executor's own record of the inode
it placed and of the bytes it wrote there decides, never the container's word. A hostile container
that changes such a file in place (and puts its size and times back), replaces it, renames it or
links to it gets exactly the bytes it left saved; one that asks for another tenant's collection in
its output directory is refused before anything runs, so no block of it is ever placed. On a real
cluster, with bubblewrap."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from archipelago.formats.locator import Locator
from archipelago.rpc import ApiRequestError
from archipelago.sdk import ApiClient, Collection
from tests.support.clusters import new_user
from tests.support.compute import submit, wait_final
from tests.support.runtimes import RuntimeCluster, runtime_cluster

pytestmark = pytest.mark.integration
BIG = 1 << 20  # the input file: large enough that an upload of it would be its own block


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> RuntimeCluster:
    with runtime_cluster("bubblewrap", tmp_path_factory.mktemp("placed")) as cluster:
        yield cluster


def packed_input(user: ApiClient) -> tuple[Collection, bytes, str]:
    """A collection whose big.bin shares one block with note.txt: a reference to it names that block
    at an offset, an upload of big.bin alone would be a block of its own (md5 of big.bin)."""
    data = secrets.token_bytes(BIG)
    collection = Collection(user)
    collection.write("note.txt", b"packed beside it\n")
    collection.write("big.bin", data)
    collection.save_new(f"input {secrets.token_hex(4)}")
    (block,) = {Locator.parse(s[0]).md5 for s in collection.segments("big.bin")}
    assert block != hashlib.md5(data).hexdigest(), "the writer packs small files: this test needs it"
    return collection, data, block


def run(user: ApiClient, script: str, mounts: dict) -> tuple[dict, dict]:
    request = submit(user, ["sh", "-c", script], mounts={"/out": {"kind": "tmp", "capacity": 64 << 20}, **mounts})
    done = wait_final(user, request["uuid"], timeout=180)
    return done, user.containers.get(done["container_uuid"])


def blocks_of(output: Collection, path: str) -> set[str]:
    return {Locator.parse(s[0]).md5 for s in output.segments(path)}


def stored(site: RuntimeCluster, md5: str) -> bool:
    """Is this block in the cluster's keepstore volume (written there by anyone)?"""
    return (site.process.directory / "keep" / md5[:3] / md5).exists()


def test_an_unchanged_placed_input_is_saved_by_reference_with_no_upload(site):
    user = new_user(site.admin, "placer")
    source, data, block = packed_input(user)
    done, container = run(user, "cat big.bin > /dev/null; ls -l > listing.txt", {
        "/out/big.bin": {"kind": "collection", "portable_data_hash": source.record["portable_data_hash"],
                         "path": "big.bin"}})
    assert (container["state"], container["exit_code"]) == ("Complete", 0)
    output = Collection(user, done["output_uuid"])
    assert output.read("big.bin") == data
    assert blocks_of(output, "big.bin") == {block}  # the input's own block, at its offset
    assert stored(site, block)
    assert not stored(site, hashlib.md5(data).hexdigest())  # big.bin was never written to Keep on its own
    log = Collection(user, done["log_uuid"]).read("crunch-run.txt").decode()
    assert f"{BIG} bytes of inputs placed in the output directory saved by reference" in log


def test_a_container_cannot_pass_off_other_bytes_as_the_input_it_was_given(site):
    user = new_user(site.admin, "forger")
    source, data, block = packed_input(user)
    pdh = source.record["portable_data_hash"]
    mounts = {f"/out/{name}": {"kind": "collection", "portable_data_hash": pdh, "path": "big.bin"}
              for name in ("inplace.bin", "replaced.bin", "moved.bin", "kept.bin")}
    # in place, same size, its times put back; deleted and made again (its inode may come back);
    # renamed with a new file at the old name; linked twice (hard and soft) and left alone
    script = ("touch -r inplace.bin /tmp/stamp; printf 'X' | dd of=inplace.bin bs=1 seek=100 conv=notrunc "
              "2>/dev/null; touch -r /tmp/stamp inplace.bin; "
              f"rm replaced.bin; head -c {BIG} /dev/zero > replaced.bin; "
              "mv moved.bin renamed.bin; echo new > moved.bin; "
              "ln kept.bin hardlink.bin; ln -s kept.bin symlink.bin")
    done, container = run(user, script, mounts)
    assert (container["state"], container["exit_code"]) == ("Complete", 0)
    output = Collection(user, done["output_uuid"])
    changed = data[:100] + b"X" + data[101:]
    assert output.read("inplace.bin") == changed
    assert block not in blocks_of(output, "inplace.bin")  # uploaded: not the input's block
    assert output.read("replaced.bin") == bytes(BIG) and block not in blocks_of(output, "replaced.bin")
    assert output.read("moved.bin") == b"new\n"
    for name in ("renamed.bin", "kept.bin", "hardlink.bin", "symlink.bin"):  # still the bytes it was given
        assert output.read(name) == data and blocks_of(output, name) == {block}, name


def test_another_tenants_collection_is_never_placed_nor_referenced(site):
    owner, thief = new_user(site.admin, "owner"), new_user(site.admin, "thief")
    private, _, _ = packed_input(owner)
    with pytest.raises(ApiRequestError) as refused:  # what a request may read is its committer's to read
        run(thief, "ls -l > listing.txt", {
            "/out/stolen.bin": {"kind": "collection", "portable_data_hash": private.record["portable_data_hash"],
                                "path": "big.bin"}})
    assert refused.value.status == 422 and "not found" in str(refused.value)
    assert not thief.containers.list()["items"]  # nothing ran for it, nothing was placed
