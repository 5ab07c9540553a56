"""The API refuses, on create and on update, a manifest the official Arvados SDK would read otherwise
than we do (issue 17, defect 10); it stores what it accepts as sent, PDH over the submitted text."""

from __future__ import annotations

import hashlib

import pytest

from archipelago.errors import Unprocessable
from archipelago.formats.manifest import portable_data_hash
from archipelago.rpc import ApiRequestError
from tests.support.backends import single_cluster

EMPTY = "d41d8cd98f00b204e9800998ecf8427e+0"
LA, LC = (f"{hashlib.md5(data).hexdigest()}+{len(data)}" for data in (b"a" * 15, b"c" * 105))
WRITTEN_BY_THE_OLD_REGISTER = f"./run1 {LA} {EMPTY} {LC} 0:15:a.txt 15:0:b.txt 15:105:c.txt\n"
AS_ARVADOS_WRITES_IT = f"./run1 {LA} {LC} 0:15:a.txt 0:0:b.txt 15:105:c.txt\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return single_cluster(tmp_path_factory.mktemp("collection-manifests"))


def test_a_zero_length_block_between_blocks_with_data_is_refused_on_create_and_update(site):
    with pytest.raises(Unprocessable) as refused:
        site.backend.create(site.admin, "collections", {"manifest_text": WRITTEN_BY_THE_OLD_REGISTER})
    message = str(refused.value)  # names the stream, the locator and the rule
    assert "stream ./run1" in message and "line 1, token 3" in message and EMPTY in message
    assert "zero-length block between blocks with data" in message

    made = site.backend.create(site.admin, "collections", {"manifest_text": AS_ARVADOS_WRITES_IT})
    assert made["portable_data_hash"] == portable_data_hash(AS_ARVADOS_WRITES_IT)  # as sent, not rewritten
    with pytest.raises(Unprocessable, match="zero-length block"):
        site.backend.update(site.admin, "collections", made["uuid"], {"manifest_text": WRITTEN_BY_THE_OLD_REGISTER})
    assert site.backend.get(site.admin, "collections", made["uuid"])["unsigned_manifest_text"] == AS_ARVADOS_WRITES_IT


def test_a_path_both_a_file_and_a_directory_is_refused(site):
    with pytest.raises(Unprocessable, match="both a file and a directory"):
        site.backend.create(site.admin, "collections", {"manifest_text": f". {EMPTY} 0:0:a\n./a {EMPTY} 0:0:b\n"})


def test_clients_get_422_and_the_reason(site):
    alice = site.new_user("alice")
    with pytest.raises(ApiRequestError) as refused:  # before any signature is looked at
        site.client(alice).collections.create({"manifest_text": WRITTEN_BY_THE_OLD_REGISTER})
    assert refused.value.status == 422 and "zero-length block" in str(refused.value)
