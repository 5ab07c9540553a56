"""`archi launch` on a real federation with its resolver: a command runs at the site that holds the
dataset (resolved from its DOI), reads it there and its output comes home; a dataset that stays on
its cluster is processed only there; `--dry-run` says where and why; a CWL workflow runs there too."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3

from archipelago.formats.tokens import salt_token
from archipelago.resolver.client import ResolverClient
from archipelago.sdk.client import ApiClient
from archipelago.sdk.collection import Collection
from tests.support.resolver import resolver_federation

pytestmark = pytest.mark.integration
ROWS = 250


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    with resolver_federation(tmp_path_factory.mktemp("launch-fed"), windows={"poll_interval": 1}) as federation:
        admins = federation["admins"]
        user = admins["z1111"].users.create({"email": "r@example.org", "username": "researcher"})
        row = admins["z1111"].api_client_authorizations.create({"owner_uuid": user["uuid"]})
        researcher = ApiClient(admins["z1111"].base, f"v2/{row['uuid']}/{row['api_token']}", insecure=True)
        for cid, admin in admins.items():  # the researcher becomes known at every cluster (mirrored from home)
            if cid != "z1111":
                ApiClient(admin.base, salt_token(researcher.token, cid), insecure=True).users.current()
        yield {**federation, "researcher": researcher, "researcher_uuid": user["uuid"]}


def shared_dataset(fed, cid: str, identifier: str, residency: bool = False) -> dict:
    admin = fed["admins"][cid]
    owner = None
    if residency:
        owner = admin.groups.create({"name": f"stays {identifier}", "group_class": "project",
                                     "residency": "cluster"})["uuid"]
    collection = Collection(admin)
    collection.write("rows.csv", b"".join(b"%d,x\n" % n for n in range(ROWS)))
    record = collection.save_new(f"dataset {identifier}", owner_uuid=owner)
    admin.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": fed["researcher_uuid"],
                        "head_uuid": owner or record["uuid"]})
    admin.request("POST", "identifiers", body={"identifier": {"head_uuid": record["uuid"], "identifier": identifier,
                                                              "published": True}})
    deadline = time.monotonic() + 30
    while not (answer := ResolverClient([fed["resolver"].url]).resolve(identifier)) or not answer.data["holders"]:
        assert time.monotonic() < deadline, f"{identifier} never reached the resolver"
        time.sleep(0.2)
    return record


def archi(fed, *args: str) -> subprocess.CompletedProcess:
    researcher = fed["researcher"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARCHI_", "ARVADOS_"))}
    env.update(ARCHI_API_HOST=researcher.base, ARCHI_API_TOKEN=researcher.token, ARCHI_API_HOST_INSECURE="1")
    return subprocess.run([sys.executable, "-m", "archipelago", *args], capture_output=True, text=True, env=env,
                          timeout=240)


def test_a_command_runs_at_the_holding_site_and_its_result_comes_home(fed):
    held = shared_dataset(fed, "z2222", "doi:10.5555/launch-here")
    dry = archi(fed, "launch", "https://doi.org/10.5555/LAUNCH-HERE", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)["plan"]
    assert (plan["site"], plan["collection_uuid"]) == ("z2222", held["uuid"]) and plan["reasons"]
    run = archi(fed, "launch", "doi:10.5555/launch-here", "--json", "--", "sh", "-c", "wc -l < /data/rows.csv > n.txt")
    assert run.returncode == 0, run.stderr + run.stdout
    report = json.loads(run.stdout)
    assert report["uuid"].startswith("z2222-xvhdp-") and report["exit_code"] == 0  # it ran at z2222
    home = report["home_output"]["uuid"]
    assert home.startswith("z1111-4zz18-")  # the result came home
    assert Collection(fed["researcher"], home).read("n.txt").strip() == str(ROWS).encode()


def test_restricted_data_is_processed_only_where_it_lives(fed):
    held = shared_dataset(fed, "z3333", "doi:10.5555/stays-on-3", residency=True)
    run = archi(fed, "launch", "doi:10.5555/stays-on-3", "--json", "--", "sh", "-c", "wc -l < /data/rows.csv > n.txt")
    assert run.returncode == 0, run.stderr + run.stdout
    report = json.loads(run.stdout)
    assert report["plan"]["site"] == "z3333" and report["plan"]["residency"] == "cluster"
    assert report["uuid"].startswith("z3333-") and report["exit_code"] == 0
    assert Collection(fed["researcher"], report["home_output"]["uuid"]).read("n.txt").strip() == str(ROWS).encode()
    elsewhere = archi(fed, "launch", "doi:10.5555/stays-on-3", "--site", "z1111", "--", "true")
    assert elsewhere.returncode == 2 and "not the site asked for" in elsewhere.stderr
    with pytest.raises(Exception) as info:  # and the data itself cannot be read from home
        Collection(fed["researcher"], held["uuid"]).read("rows.csv")
    assert "residency" in str(info.value)


def test_a_workflow_runs_at_the_data(fed, tmp_path):
    shared_dataset(fed, "z2222", "doi:10.5555/launch-workflow")
    workflow = Path(tmp_path / "count.cwl")
    workflow.write_text(json.dumps({
        "cwlVersion": "v1.2", "class": "CommandLineTool", "baseCommand": ["sh", "-c"],
        "arguments": ["wc -l < $(inputs.dataset.path)/rows.csv > n.txt"],
        "inputs": {"dataset": "Directory"}, "outputs": {"n": {"type": "File", "outputBinding": {"glob": "n.txt"}}}}))
    run = archi(fed, "launch", "doi:10.5555/launch-workflow", "--workflow", str(workflow), "--json")
    assert run.returncode == 0, run.stderr + run.stdout
    result = json.loads(run.stdout)
    assert result["status"] == "success" and result["plan"]["site"] == "z2222"
    assert result["outputs"]["n"]["location"].startswith("keep:")


@pytest.mark.skipif(importlib.util.find_spec("jupyterlab") is None, reason="JupyterLab (archipelago[notebook])")
def test_a_notebook_starts_at_the_data_and_only_its_user_gets_in(fed):
    shared_dataset(fed, "z2222", "doi:10.5555/launch-notebook")
    run = archi(fed, "launch", "doi:10.5555/launch-notebook", "--notebook", "--idle", "5", "--json")
    assert run.returncode == 0, run.stderr + run.stdout
    started = json.loads(run.stdout)
    assert started["cluster"] == "z2222" and started["request"].startswith("z2222-xvhdp-")
    status = started["url"].removesuffix("lab") + "api/status"
    salted = salt_token(fed["researcher"].token, "z2222")
    http = urllib3.PoolManager(cert_reqs="CERT_NONE", retries=False)
    deadline = time.monotonic() + 120
    while (answer := http.request("GET", status, headers={"Authorization": f"Bearer {salted}"})).status != 200:
        assert time.monotonic() < deadline, f"the notebook never answered: {answer.status} {answer.data[:300]}"
        time.sleep(0.5)
    assert http.request("GET", status).status == 401  # no token, no notebook
    handed = parse_qs(urlsplit(started["login_url"]).query)["token"][0]  # printed: this notebook's alone
    assert handed != salted and http.request("GET", status, headers={"Authorization": f"Bearer {handed}"}).status == 200
    elsewhere = http.request("GET", started["url"].split("/arvados/")[0] + "/arvados/v1/collections",
                             headers={"Authorization": f"Bearer {handed}"})
    assert elsewhere.status == 403
    stranger = fed["admins"]["z2222"].api_client_authorizations.create({})
    assert http.request("GET", status, headers={"Authorization": f"Bearer v2/{stranger['uuid']}/"
                                                                 f"{stranger['api_token']}"}).status in (403, 404)
    stopped = archi(fed, "notebook", "stop", started["request"])
    assert stopped.returncode == 0, stopped.stderr
