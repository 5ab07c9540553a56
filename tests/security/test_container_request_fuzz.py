"""Generated container requests (issue 17, defect 9): whatever a tenant sends, the API answers
without a 5xx, every container it accepts can be sized by the dispatchers, and afterwards a valid
request still runs to completion (nothing stalled the dispatcher).

The bodies: the field names of the discovery document's ContainerRequest schema, starting from a
valid request with some fields replaced. Its schema types JSON fields as strings, so the values of
the structured ones (mounts, runtime_constraints, ...) are drawn from the keys and kinds Arvados
defines, with hostile values (negative, huge, wrong types, paths that climb)."""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st

from archipelago.compute.dispatch.local import LocalProcesses
from archipelago.compute.dispatch.slurm import sbatch_options
from archipelago.run.cluster import init_cluster
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient, ApiRequestError
from tests.support.asgi import AsgiTransport
from tests.support.backends import Site, single_cluster
from tests.support.clusters import new_user
from tests.support.compute import request_attrs, submit, wait_final

ROOT = "https://z1111.test"
PDH = "d41d8cd98f00b204e9800998ecf8427e+0"
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
SIZES = st.sampled_from([0, 1, -1, 64 << 20, 1 << 62, 1 << 63, 1 << 70, 2 ** 31]) | st.integers()
HOSTILE = SIZES | SCALARS | st.lists(SIZES, max_size=3) | st.sampled_from(["lots", "1G", "", "x"])
PATHS = st.sampled_from(["/out", "/out/x", "/in", "/", "", "out", "../etc", "/out/../etc", "/out/./x", "/out//x",
                         "/out/x/", "/out/%2e%2e", "/tmp", "stdin", "stdout", "stderr", "/out/x\0y", "/keep"]) \
    | st.text(max_size=12)
MOUNT_KEYS = ["kind", "uuid", "portable_data_hash", "writable", "path", "capacity", "content", "device_type",
              "exclude_from_output", "bogus"]
MOUNT_VALUES = {
    "kind": st.sampled_from(["collection", "tmp", "keep", "json", "text", "file", "nfs", ""]) | JSON_VALUES,
    "uuid": st.sampled_from(["z1111-4zz18-000000000000000", "z9999-4zz18-000000000000000", "x"]) | HOSTILE,
    "portable_data_hash": st.sampled_from([PDH, "ffffffffffffffffffffffffffffffff+3", "abc", PDH + "+K@z2"]) | HOSTILE,
    "path": PATHS,
}
CONSTRAINT_KEYS = ["ram", "vcpus", "keep_cache_ram", "keep_cache_disk", "API", "gpu", "cuda", "rma"]
SCHEDULING_KEYS = ["max_run_time", "partitions", "preemptible", "supervisor", "nice"]


def keyed(keys: list[str], values: dict[str, Any] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Objects over these keys (some of them), each value from its own strategy or a hostile one."""
    return st.lists(st.sampled_from(keys), unique=True, max_size=len(keys)).flatmap(
        lambda chosen: st.fixed_dictionaries({k: (values or {}).get(k, HOSTILE) for k in chosen}))


MOUNTS = st.dictionaries(PATHS, keyed(MOUNT_KEYS, MOUNT_VALUES) | JSON_VALUES, max_size=3).map(
    lambda extra: {"/out": {"kind": "tmp"}, **extra})
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "mounts": MOUNTS,
    "secret_mounts": st.dictionaries(PATHS, keyed(MOUNT_KEYS, MOUNT_VALUES), max_size=2),
    "runtime_constraints": keyed(CONSTRAINT_KEYS),
    "scheduling_parameters": keyed(SCHEDULING_KEYS),
    "environment": st.dictionaries(st.text(max_size=6), HOSTILE, max_size=3),
    "command": st.lists(st.text(max_size=8), max_size=3) | JSON_VALUES,
    "output_path": PATHS, "cwd": PATHS,
    "priority": HOSTILE, "container_count_max": HOSTILE, "output_ttl": HOSTILE,
    "state": st.sampled_from(["Committed", "Uncommitted", "Final", "x"]) | JSON_VALUES,
}


@functools.cache
def schema_fields() -> list[str]:
    """The ContainerRequest fields the discovery document declares (read once, when first drawn)."""
    with tempfile.TemporaryDirectory() as directory:
        app = single_cluster(Path(directory)).apps["self"]
        response = AsgiTransport(app).request("GET", f"{ROOT}/discovery/v1/apis/arvados/v1/rest", None, {})
    return sorted(json.loads(response.data)["schemas"]["ContainerRequest"]["properties"])


@st.composite
def bodies(draw: Any) -> dict[str, Any]:
    """A valid request with some of its fields (any the schema names) replaced."""
    body = {**request_attrs(["true"])}
    for field in draw(st.lists(st.sampled_from(schema_fields()), unique=True, min_size=1, max_size=4)):
        body[field] = draw(FIELD_VALUES.get(field, JSON_VALUES))
    return body


def stalled_the_dispatcher(**overrides: Any) -> dict[str, Any]:
    """Bodies the API used to accept (or answer 500 to) and the local dispatcher then raised on every
    pass; at the highest priority, so that everything after them waits behind them."""
    return {**request_attrs(["true"]), "priority": 1000, **overrides}


KNOWN = [stalled_the_dispatcher(runtime_constraints={"ram": "lots", "vcpus": 1}),
         stalled_the_dispatcher(runtime_constraints={"ram": 64 << 20, "vcpus": "x"}),
         stalled_the_dispatcher(scheduling_parameters={"max_run_time": "x"}),
         stalled_the_dispatcher(mounts={"/out": {"kind": "tmp"}, "/in": {"kind": "collection", "uuid": 5}})]


def with_known(test: Any) -> Any:
    for body in KNOWN:
        test = example(body=body)(test)
    return test


def sizable(container: dict[str, Any], local: LocalProcesses) -> None:
    """What the dispatchers compute before they start a container must not raise for one the API took."""
    local.fits(container)
    local.adopt(container)  # as if it ran: the next one is sized against it too
    sbatch_options(container)


# ---------------------------------------------------------------- in process: the API never fails
@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return single_cluster(Path(tmp_path_factory.mktemp("fuzz")))


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> LocalProcesses:
    """The local dispatcher's sizing (no process is started here)."""
    return LocalProcesses(Path(tmp_path_factory.mktemp("sizing")), {}, cores=2, ram=1 << 30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(body=bodies(), commit_later=bodies())
@example(body=KNOWN[0], commit_later=KNOWN[1]).via("the defect")
@example(body=KNOWN[3], commit_later=KNOWN[2]).via("the defect")
def test_no_request_body_gives_a_server_error_or_an_unrunnable_container(site: Site, local: LocalProcesses, body,
                                                                        commit_later) -> None:
    tenant = site.new_user("tenant")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {tenant.token}"}
    app = AsgiTransport(site.apps["self"])
    response = app.request("POST", f"{ROOT}/arvados/v1/container_requests",
                           json.dumps({"container_request": body}).encode(), headers)
    assert response.status < 500, f"{body!r}: {response.status} {response.data[:300]!r}"
    event(f"create: {response.status}")
    if response.status != 200:
        return
    created = json.loads(response.data)
    if created["state"] == "Uncommitted":  # then an update, as a client commits one
        response = app.request("PUT", f"{ROOT}/arvados/v1/container_requests/{created['uuid']}",
                               json.dumps({"container_request": {**commit_later, "state": "Committed"}}).encode(),
                               headers)
        assert response.status < 500, f"{commit_later!r}: {response.status} {response.data[:300]!r}"
        created = json.loads(response.data) if response.status == 200 else created
    event(f"container: {bool(created.get('container_uuid'))}")
    if created.get("container_uuid"):
        sizable(site.backend.get(site.admin, "containers", created["container_uuid"]), local)


# ---------------------------------------------------------------- a real cluster: nothing stalls
@pytest.fixture(scope="module")
def cluster_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiClient]:
    directory = tmp_path_factory.mktemp("fuzz-cluster")
    init_cluster(directory, "z1111", f"sqlite:///{directory / 'archipelago.db'}")
    with ClusterProcess(directory) as process:
        yield ApiClient(process.api_url, process.admin_token, insecure=True)


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_after_generated_requests_a_valid_one_still_runs_to_completion(cluster_admin: ApiClient) -> None:
    tenant = new_user(cluster_admin, "fuzzer")

    @settings(max_examples=25, deadline=None, database=None, phases=[Phase.explicit, Phase.generate])
    @given(body=bodies())
    @with_known
    def post(body: dict[str, Any]) -> None:
        try:
            tenant.request("POST", "container_requests", body={"container_request": {**body, "command": ["true"]}})
        except ApiRequestError as exc:
            assert exc.status < 500, f"{body!r}: {exc}"

    post()
    user = new_user(cluster_admin, "after")
    done = wait_final(user, submit(user, ["sh", "-c", "echo still running > ok.txt"])["uuid"], timeout=120)
    container = user.containers.get(done["container_uuid"])
    assert (container["state"], container["exit_code"]) == ("Complete", 0), container["runtime_status"]
