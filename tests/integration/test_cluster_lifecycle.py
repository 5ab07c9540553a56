"""`archi cluster up` stops cleanly and at once on SIGTERM, even with clients' keep-alive
connections open to its API and keepstore (every teardown in this suite relies on it)."""

from __future__ import annotations

import signal
import time

import pytest
import urllib3

from archipelago.run.cluster import init_cluster
from archipelago.run.processes import ClusterProcess

pytestmark = pytest.mark.integration


def test_sigterm_stops_the_cluster_cleanly_with_connections_open(tmp_path):
    init_cluster(tmp_path, "z1111")
    cluster = ClusterProcess(tmp_path).start()
    assert cluster.process is not None
    http = urllib3.PoolManager(cert_reqs="CERT_NONE")
    auth = {"Authorization": f"Bearer {cluster.admin_token}"}
    for _ in range(3):  # pooled: the connections stay open after each answer
        assert http.request("GET", cluster.api_url + "/arvados/v1/users/current", headers=auth).status == 200
        assert http.request("GET", cluster.keep_url + "/index", headers=auth).status in (200, 403)
    started = time.monotonic()
    cluster.process.send_signal(signal.SIGTERM)
    code = cluster.process.wait(timeout=5)  # a bound that fails the test if it hangs, not a benchmark
    print(f"stopped {time.monotonic() - started:.2f} s after SIGTERM")
    assert code == 0
    assert "Traceback" not in (tmp_path / "cluster.log").read_text()
