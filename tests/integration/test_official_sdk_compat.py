"""What the official Arvados Python SDK (unchanged, from PyPI) asks of a cluster, beyond the tools:
the calls trash-aware and property-filtering clients make, and the limits Arvados enforces."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from archipelago.sdk import ApiClient, ApiRequestError, Collection
from tests.support.clusters import new_user

pytestmark = pytest.mark.integration


def sdk(cluster, token: str, script: str, *args: str) -> dict:
    """Run `script` with the official SDK (`api` bound to the cluster as `token`); its JSON output."""
    env = {**os.environ, "ARVADOS_API_HOST": cluster.api_url.removeprefix("https://"), "ARVADOS_API_TOKEN": token,
           "ARVADOS_API_HOST_INSECURE": "1", "HOME": os.environ.get("TMPDIR", "/tmp")}
    code = "import json, sys, arvados\napi = arvados.api('v1')\n" + script
    result = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_a_trashed_collection_is_found_with_include_trash_and_untrashed(cluster):
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    alice = new_user(admin, "alice")
    made = Collection(alice)
    made.write("x.txt", b"x")
    record = made.save_new("to trash")
    alice.request("POST", f"collections/{record['uuid']}/trash")
    seen = sdk(cluster, alice.token, """
uuid = sys.argv[1]
found = api.collections().get(uuid=uuid, include_trash=True).execute()
api.collections().untrash(uuid=uuid).execute()
again = api.collections().get(uuid=uuid).execute()
print(json.dumps({"trashed": found["is_trashed"], "after": again["is_trashed"]}))
""", record["uuid"])
    assert seen == {"trashed": True, "after": False}


def test_properties_exists_is_accepted_in_both_forms(cluster):
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    alice = new_user(admin, "alice")
    tagged = alice.collections.create({"name": "tagged", "properties": {"sample": "s1"}})
    alice.collections.create({"name": "untagged"})
    seen = sdk(cluster, alice.token, """
old = api.collections().list(filters=[["properties", "exists", "sample"]]).execute()["items"]
new = api.collections().list(filters=[["properties.sample", "exists", True]]).execute()["items"]
print(json.dumps({"old": [c["uuid"] for c in old], "new": [c["uuid"] for c in new]}))
""")
    assert seen == {"old": [tagged["uuid"]], "new": [tagged["uuid"]]}


@pytest.mark.parametrize("resource", ["collections", "groups"])
def test_a_name_longer_than_255_characters_is_refused(cluster, resource):
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    extra = {"group_class": "project"} if resource == "groups" else {}
    with pytest.raises(ApiRequestError) as refused:
        admin.request("POST", resource, body={resource[:-1]: {"name": "n" * 256, **extra}})
    assert refused.value.status == 422 and "255" in str(refused.value)
    accepted = admin.request("POST", resource, body={resource[:-1]: {"name": "n" * 255, **extra}})
    assert len(accepted["name"]) == 255


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_a_permission_link_to_a_user_that_does_not_exist_is_refused(cluster, who):
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    alice = new_user(admin, "alice")
    mine = alice.collections.create({"name": "mine"})
    ghost = "z1111-tpzed-" + "0" * 14 + "9"
    with pytest.raises(ApiRequestError) as refused:
        (alice if who == "owner" else admin).links.create({"link_class": "permission", "name": "can_read",
                                                           "tail_uuid": ghost, "head_uuid": mine["uuid"]})
    assert refused.value.status == 422 and ghost in str(refused.value)
