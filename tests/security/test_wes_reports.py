"""What WES reads into the shared API server, attacked on a real cluster (SQLite and PostgreSQL): a
tenant makes her own "run" (a container request tagged as a runner's) whose container writes a
report.json larger than the service reads. Asking for the run (its log, its tasks) must not make
the API server read it (with gigabytes, every API process asked would run out of memory): the run
log says the report was too large, and its outputs are not taken from it."""

from __future__ import annotations

from typing import Any

import pytest

from archipelago.ga4gh.wes import MAX_READ, RUN_TYPE
from archipelago.sdk import ApiClient
from tests.support.clusters import new_user
from tests.support.compute import submit, wait_final
from tests.support.wes import call

pytestmark = pytest.mark.integration
WES = "/ga4gh/wes/v1"
# valid JSON naming an output, padded past the bound
WRITE = (f'printf \'{{"outputs": {{"n": 1}}, "pad": "\' > report.json && head -c {MAX_READ + 1024} /dev/zero '
         '| tr "\\0" a >> report.json && printf \'"}\' >> report.json')


@pytest.fixture(scope="module")
def mallory(cluster: Any) -> ApiClient:
    return new_user(ApiClient(cluster.api_url, cluster.admin_token, insecure=True), "mallory")


def test_a_runs_oversized_report_is_not_read_into_the_api_server(mallory: ApiClient) -> None:
    request = submit(mallory, ["sh", "-c", WRITE], properties={"type": RUN_TYPE},
                     mounts={"/out": {"kind": "tmp", "capacity": 64 << 20}})
    final = wait_final(mallory, request["uuid"], 120)
    assert final["output_uuid"], final
    log = call("GET", f"{mallory.base}{WES}/runs/{request['uuid']}", mallory.token)
    assert log.status == 200, log.data
    body = log.json()
    assert body["outputs"] == {}  # before: read whole, its outputs answered
    assert any("more than" in line and "report.json" in line for line in body["run_log"]["system_logs"]), body
    assert call("GET", f"{mallory.base}{WES}/runs/{request['uuid']}/tasks", mallory.token).status == 200
