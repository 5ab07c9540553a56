"""DRS 1.5 and WES 1.1 checked against their OpenAPI documents (../shared/ga4gh, unmodified) with
schemathesis on a real cluster: generated requests for every operation we serve (a bounded number
of examples each) never get a 5xx, a status the document does not list, or a body that does not
match its schema; and real objects and runs (a bundle, a file, its access URL, a run, its tasks)
answer as the schema says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from archipelago.sdk import ApiClient, Collection  # noqa: E402
from tests.support.clusters import new_user  # noqa: E402
from tests.support.ga4gh_schemas import DRS, WES, offline_references  # noqa: E402
from tests.support.wes import run_request, submit  # noqa: E402

pytestmark = pytest.mark.integration
if not DRS.exists() or not WES.exists():
    pytest.skip(f"the GA4GH OpenAPI documents are not beside this checkout ({DRS.parent.parent.parent})",
                allow_module_level=True)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = settings(max_examples=15, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One cluster on SQLite (schemathesis' lazy tests cannot take the shared fixture's database
    parameter; the HTTP contract does not depend on the database)."""
    from archipelago.run.cluster import init_cluster
    from archipelago.run.processes import ClusterProcess

    directory = tmp_path_factory.mktemp("cluster")
    init_cluster(directory, "z1111", f"sqlite:///{directory / 'archipelago.db'}")
    with ClusterProcess(directory) as process:
        yield process


@pytest.fixture(scope="module")
def user(cluster: Any) -> ApiClient:
    return new_user(ApiClient(cluster.api_url, cluster.admin_token, insecure=True), "schemas")


def load(path: Any) -> Any:
    with offline_references():
        return schemathesis.openapi.from_path(str(path))


def operations(schema: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    with offline_references():
        found = [result.ok() for result in schema.get_all_operations()]
    return {op.label: op for op in found if op.label not in skip}


DRS_SCHEMA, WES_SCHEMA = load(DRS), load(WES)
# the bulk and passport (POST) forms of DRS are not offered (405): not checked here
DRS_OPERATIONS = operations(DRS_SCHEMA, skip=("POST /objects/{object_id}", "POST /objects",
                                              "POST /objects/access", "POST /objects/{object_id}/access/{access_id}"))
WES_OPERATIONS = operations(WES_SCHEMA)


@pytest.fixture(scope="module")
def drs_schema() -> Any:
    return DRS_SCHEMA


@pytest.fixture(scope="module")
def wes_schema() -> Any:
    return WES_SCHEMA


def headers(user: ApiClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {user.token}"}


def fuzz(operation: Any, base_url: str, user: ApiClient) -> None:
    """A bounded number of generated requests for one operation, each response checked."""

    @given(case=operation.as_strategy())
    @EXAMPLES
    def check(case: Any) -> None:
        with offline_references():
            case.call_and_validate(base_url=base_url, headers=headers(user), verify=False, checks=CHECKS)

    check()


@pytest.mark.parametrize("label", sorted(DRS_OPERATIONS))
def test_drs_generated_requests(label: str, cluster: Any, user: ApiClient) -> None:
    fuzz(DRS_OPERATIONS[label], f"{cluster.api_url}/ga4gh/drs/v1", user)


@pytest.mark.parametrize("label", sorted(WES_OPERATIONS))
def test_wes_generated_requests(label: str, cluster: Any, user: ApiClient) -> None:
    fuzz(WES_OPERATIONS[label], f"{cluster.api_url}/ga4gh/wes/v1", user)


@pytest.fixture(scope="module")
def real_ids(user: ApiClient) -> Iterator[dict[str, str]]:
    collection = Collection(user)
    collection.write("dir/a.txt", b"a\n")
    collection.write("b.csv", b"x,y\n")
    pdh = collection.save_new("schema objects")["portable_data_hash"]
    fields = run_request("wc.cwl", {"infile": {"class": "File", "location": "x.txt"}},
                         {"wc.cwl": b"cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [wc, -l]\n"
                                    b"inputs: {infile: File}\nstdin: $(inputs.infile.path)\nstdout: n.txt\n"
                                    b"outputs: {n: {type: stdout}}\n", "x.txt": b"1\n2\n"})
    run_id = submit(user.base, user.token, fields).json()["run_id"]
    yield {"bundle": pdh, "file": f"{pdh}/dir/a.txt", "directory": f"{pdh}/dir", "run": run_id}


def validate(schema: Any, path: str, method: str, cluster: Any, user: ApiClient, base: str, **parameters: Any) -> Any:
    with offline_references():
        case = schema[path][method].Case(**parameters)
        return case.call_and_validate(base_url=f"{cluster.api_url}{base}", headers=headers(user), verify=False,
                                      checks=CHECKS)


def test_real_drs_objects_match_the_schema(drs_schema: Any, cluster: Any, user: ApiClient, real_ids: dict) -> None:
    for key in ("bundle", "file", "directory"):
        response = validate(drs_schema, "/objects/{object_id}", "GET", cluster, user, "/ga4gh/drs/v1",
                            path_parameters={"object_id": quote(real_ids[key], safe="")},
                            query={"expand": True})
        assert response.status_code == 200, response.text
    response = validate(drs_schema, "/objects/{object_id}/access/{access_id}", "GET", cluster, user,
                        "/ga4gh/drs/v1", path_parameters={"object_id": quote(real_ids["file"], safe=""),
                                                          "access_id": "https"})
    assert response.status_code == 200
    assert validate(drs_schema, "/service-info", "GET", cluster, user, "/ga4gh/drs/v1").status_code == 200


def test_a_real_run_matches_the_schema(wes_schema: Any, cluster: Any, user: ApiClient, real_ids: dict) -> None:
    run = {"run_id": real_ids["run"]}
    for path in ("/runs/{run_id}", "/runs/{run_id}/status", "/runs/{run_id}/tasks"):
        assert validate(wes_schema, path, "GET", cluster, user, "/ga4gh/wes/v1", path_parameters=run).status_code \
            == 200, path
    assert validate(wes_schema, "/runs", "GET", cluster, user, "/ga4gh/wes/v1", query={"page_size": 1}).status_code \
        == 200
    assert validate(wes_schema, "/service-info", "GET", cluster, user, "/ga4gh/wes/v1").status_code == 200
    assert validate(wes_schema, "/runs/{run_id}/cancel", "POST", cluster, user, "/ga4gh/wes/v1",
                    path_parameters=run).status_code == 200
