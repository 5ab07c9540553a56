"""The `archi` commands a user runs against a cluster, as subprocesses: JSON output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True, scope="module"),
]


@pytest.fixture(scope="module")
def env(cluster, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    return {**os.environ, "XDG_CONFIG_HOME": str(home), "ARCHI_API_HOST": "", "ARCHI_API_TOKEN": "",
            "ARVADOS_API_HOST": "", "ARVADOS_API_TOKEN": ""}


def archi(env: dict, *args: str, code: int = 0) -> dict | list:
    result = subprocess.run([sys.executable, "-m", "archipelago", *args, "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == code, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_login_then_projects_collections_sharing_tokens(cluster, env, tmp_path):
    # no cluster configured yet: bad input
    assert archi(env, "collection", "list", code=2)["error"]
    archi(env, "login", "--host", cluster.api_url, "--token", cluster.admin_token, "--insecure")
    bob = archi(env, "user", "create", "--email", "bob@example.org", "--username", "bob-cli", "--token")
    project = archi(env, "project", "create", "analysis")["uuid"]
    assert project in [p["uuid"] for p in archi(env, "project", "list")["items"]]
    assert "--ensure-unique-name" in archi(env, "project", "create", "analysis", code=2)["error"]
    assert archi(env, "project", "create", "analysis", "--ensure-unique-name")["name"] == "analysis (2)"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.txt").write_text("x\n")
    put = archi(env, "put", str(tmp_path / "data"), "--name", "cli-run", "--project", project)
    listed = archi(env, "collection", "list", "--project", project)["items"]
    assert [c["uuid"] for c in listed] == [put["uuid"]]
    assert archi(env, "ls", put["uuid"]) == [{"path": "x.txt", "size": 2}]
    assert archi(env, "collection", "show", put["uuid"])["portable_data_hash"] == put["portable_data_hash"]
    # bob sees nothing until the project is shared with him
    bob_env = {**env, "ARCHI_API_HOST": cluster.api_url, "ARCHI_API_TOKEN": bob["token"],
               "ARCHI_API_HOST_INSECURE": "1"}
    assert archi(bob_env, "collection", "show", put["uuid"], code=1)["error"]
    archi(env, "collection", "share", project, "--with", bob["uuid"], "--level", "read")
    assert archi(bob_env, "collection", "show", put["uuid"])["uuid"] == put["uuid"]
    archi(bob_env, "get", put["uuid"], str(tmp_path / "bob-copy"))
    assert (tmp_path / "bob-copy" / "x.txt").read_text() == "x\n"
    # tokens: a read-only scoped token can list but not create; revoked tokens stop at once
    scoped = archi(bob_env, "token", "create", "--scope", "GET /arvados/v1/collections")["token"]
    scoped_env = {**bob_env, "ARCHI_API_TOKEN": scoped}
    assert archi(scoped_env, "collection", "list")["items"] is not None
    assert "scopes" in archi(scoped_env, "project", "create", "nope", code=1)["error"]
    archi(bob_env, "token", "revoke", scoped.split("/")[1])
    assert archi(scoped_env, "collection", "list", code=1)["error"]
    # only admins create users; bad input is exit code 2
    assert archi(bob_env, "user", "create", "--email", "eve@example.org", code=1)["error"]
    assert archi(env, "collection", "share", project, "--with", bob["uuid"], "--level", "own", code=2)
    assert "must be a UUID" in archi(env, "collection", "share", project, "--with", "nobody", code=2)["error"]
    refused = subprocess.run([sys.executable, "-m", "archipelago", "token", "create", "--expires-in", "0"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "expires-in" in refused.stderr
    assert archi(env, "put", str(tmp_path / "missing"), code=2)
