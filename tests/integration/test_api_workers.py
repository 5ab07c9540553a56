"""Several API processes on one port (api.workers): what one commits, the others honour at once."""

from __future__ import annotations

import subprocess
import time

import pytest

from archipelago.config import dump_config, load_config
from archipelago.run.cluster import CONFIG_NAME, init_cluster
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient, ApiRequestError
from tests.support.clusters import new_user

pytestmark = pytest.mark.integration
ROUNDS = 24  # fresh connections, spread by the kernel over both processes


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    directory = tmp_path_factory.mktemp("workers") / "c"
    init_cluster(directory, "z1111")
    path = directory / CONFIG_NAME
    config = load_config(path)
    config.api.workers = 2
    path.write_text(dump_config(config))
    with ClusterProcess(directory) as cluster:
        deadline = time.monotonic() + 30
        while b"api --config" not in subprocess.run(["ps", "-o", "args=", "--ppid", str(cluster.process.pid)],
                                                    capture_output=True).stdout:
            assert time.monotonic() < deadline, "the second API process did not start"
            time.sleep(0.2)
        admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
        ready = time.monotonic() + 30
        while True:  # the second process answers once it has loaded
            try:
                for _ in range(ROUNDS):
                    fresh(admin).users.current()
                break
            except ApiRequestError:
                assert time.monotonic() < ready
                time.sleep(0.2)
        yield admin


def fresh(client: ApiClient) -> ApiClient:
    """The same caller on a new connection (the kernel picks the process per connection)."""
    return ApiClient(client.base, client.token, insecure=True)


def test_a_share_and_a_revocation_through_one_process_hold_in_the_other_at_once(two_workers):
    admin = two_workers
    alice = new_user(admin, "alice")
    project = admin.groups.create({"name": "shared later", "group_class": "project"})["uuid"]
    for _ in range(ROUNDS):  # both processes now cache alice's token and her (empty) permissions
        with pytest.raises(ApiRequestError) as info:
            fresh(alice).groups.get(project)
        assert info.value.status == 404
    admin.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": alice.users.current()["uuid"],
                        "head_uuid": project})
    assert all(fresh(alice).groups.get(project)["uuid"] == project for _ in range(ROUNDS))
    admin.api_client_authorizations.delete(alice.token.split("/")[1])
    for _ in range(ROUNDS):
        with pytest.raises(ApiRequestError) as info:
            fresh(alice).users.current()
        assert info.value.status == 401
