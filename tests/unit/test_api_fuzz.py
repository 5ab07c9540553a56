"""Every method the discovery document declares, called with generated parameters and bodies (in
process, on the real API app): whatever comes in, the answer is never a 5xx."""

import json
import re
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.asgi import AsgiTransport
from tests.support.backends import Site, single_cluster

ROOT = "https://z1111.test"
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
UUIDS = st.sampled_from(["z1111-4zz18-000000000000000", "z1111-j7d0g-000000000000000",
                         "z9999-4zz18-000000000000000", "d41d8cd98f00b204e9800998ecf8427e+0", "current",
                         "contents", "shared"]) | st.text(max_size=30)
FILTERS = st.lists(st.tuples(st.sampled_from(["uuid", "name", "owner_uuid", "properties.a", "nope", ""]),
                             st.sampled_from(["=", "!=", "<", "like", "in", "not in", "is_a", "exists", "bogus"]),
                             JSON_VALUES).map(list), max_size=3)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return single_cluster(Path(tmp_path_factory.mktemp("fuzz")))


def _methods(site: Site) -> list[tuple[str, dict]]:
    response = AsgiTransport(site.apps["self"]).request("GET", f"{ROOT}/discovery/v1/apis/arvados/v1/rest", None, {})
    document = json.loads(response.data)
    return [(method["httpMethod"], method)
            for resource in document["resources"].values() for method in resource["methods"].values()]


def _value(draw, name: str, spec: dict):
    if name == "filters":
        return json.dumps(draw(FILTERS)) if draw(st.booleans()) else draw(st.text(max_size=30))
    if name in ("order", "select"):
        return draw(st.sampled_from([json.dumps(["name asc"]), "name desc", "[", json.dumps([1]), ""]))
    if spec.get("type") in ("integer", "boolean"):
        return draw(st.sampled_from(["-1", "0", "5", "99999999999999999999", "x", "true"]))
    return draw(st.text(max_size=30))


@st.composite
def calls(draw, methods):
    http_method, spec = draw(st.sampled_from(methods))
    path = spec["path"].replace("{uuid}", quote(draw(UUIDS), safe=""))
    query = {p: _value(draw, p, s) for p, s in spec.get("parameters", {}).items()
             if s.get("location") == "query" and draw(st.booleans())}
    body = None
    if http_method in ("POST", "PUT", "PATCH"):
        shape = draw(st.sampled_from(["object", "json", "raw"]))
        if shape == "raw":
            body = draw(st.binary(max_size=60))
        else:
            key = re.sub(r"s$", "", path.split("/")[0]) if shape == "object" else draw(st.text(max_size=8))
            body = json.dumps({key: draw(JSON_VALUES)}).encode()
    return http_method, f"{ROOT}/arvados/v1/{path}" + (f"?{urlencode(query)}" if query else ""), body


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_no_input_gives_a_server_error(site: Site, data) -> None:
    methods = _methods(site)
    method, url, body = data.draw(calls(methods))
    token = data.draw(st.sampled_from([site.admin.token, "v2/z1111-gj3su-000000000000000/bad", ""]))
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    response = AsgiTransport(site.apps["self"]).request(method, url, body, headers)
    assert response.status < 500, f"{method} {url} {body!r}: {response.status} {response.data[:500]!r}"
