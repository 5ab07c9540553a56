"""DRS 1.5 and the file-download endpoint on a real cluster (SQLite and PostgreSQL), driven with a
plain HTTP client as a DRS user would: resolve an id, fetch its access URL, download the bytes
(whole and by range), and check them against the checksums DRS gave."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

import pytest
import urllib3

from archipelago.sdk import ApiClient, Collection
from tests.support.clusters import new_user

pytestmark = pytest.mark.integration
BIG = bytes(range(256)) * 4096 * 3 + b"tail"  # ~3 MiB: one block, not a whole-block file below
http = urllib3.PoolManager(cert_reqs="CERT_NONE", retries=False)


def get(url: str, token: str | None, **headers: str) -> urllib3.BaseHTTPResponse:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return http.request("GET", url, headers=headers)


@pytest.fixture(scope="module")
def alice(cluster: Any) -> ApiClient:
    return new_user(ApiClient(cluster.api_url, cluster.admin_token, insecure=True), "alice")


@pytest.fixture(scope="module")
def dataset(alice: ApiClient) -> dict[str, Any]:
    collection = Collection(alice)
    collection.write("reads/sample 1.fastq", BIG)
    collection.write("reads/sample2.fastq", b"ACGT\n" * 10)
    collection.write("README.md", b"# cohort\n")
    collection.mkdir("empty")
    return collection.save_new("cohort")


def test_a_bundle_lists_its_contents_with_content_based_ids(cluster: Any, alice: ApiClient, dataset: dict) -> None:
    pdh = dataset["portable_data_hash"]
    answer = get(f"{cluster.api_url}/ga4gh/drs/v1/objects/{quote(pdh, safe='')}", alice.token)
    assert answer.status == 200, answer.data
    bundle = answer.json()
    assert bundle["id"] == pdh
    assert bundle["size"] == len(BIG) + 50 + 9
    assert bundle["self_uri"].startswith("drs://127.0.0.1:") and bundle["self_uri"].endswith(quote(pdh, safe=""))
    assert {c["name"] for c in bundle["contents"]} == {"README.md", "empty", "reads"}
    assert "access_methods" not in bundle and dataset["uuid"] in bundle["aliases"]
    expanded = get(f"{cluster.api_url}/ga4gh/drs/v1/objects/{pdh.replace('+', '-')}?expand=true", alice.token).json()
    reads = next(c for c in expanded["contents"] if c["name"] == "reads")
    assert [c["id"] for c in reads["contents"]] == [f"{pdh}/reads/sample 1.fastq", f"{pdh}/reads/sample2.fastq"]
    # DRS 1.5: a bundle's checksum is the md5 of its children's md5s, sorted and concatenated
    children = [get(f"{cluster.api_url}/ga4gh/drs/v1/objects/{quote(c['id'], safe='')}", alice.token).json()
                for c in bundle["contents"]]
    expected = hashlib.md5("".join(sorted(c["checksums"][0]["checksum"] for c in children)).encode()).hexdigest()
    assert bundle["checksums"] == [{"type": "md5", "checksum": expected}]


def test_a_file_is_found_accessed_and_downloaded_as_its_checksums_say(cluster: Any, alice: ApiClient,
                                                                       dataset: dict) -> None:
    drs_id = f"{dataset['portable_data_hash']}/reads/sample 1.fastq"
    base = f"{cluster.api_url}/ga4gh/drs/v1/objects/{quote(drs_id, safe='')}"
    blob = get(f"{base}?checksum=sha-256", alice.token).json()
    assert blob["size"] == len(BIG) and blob["name"] == "sample 1.fastq"
    assert {c["type"]: c["checksum"] for c in blob["checksums"]} == {
        "md5": hashlib.md5(BIG).hexdigest(), "sha-256": hashlib.sha256(BIG).hexdigest()}
    assert blob["access_methods"] == [{"type": "https", "access_id": "https", "available": True}]
    access = get(f"{base}/access/https", alice.token).json()
    headers = dict(h.split(": ", 1) for h in access["headers"])
    whole = http.request("GET", access["url"], headers=headers)
    assert whole.status == 200 and whole.data == BIG and whole.headers["Accept-Ranges"] == "bytes"
    part = http.request("GET", access["url"], headers={**headers, "Range": "bytes=1000-1999"})
    assert part.status == 206 and part.data == BIG[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(BIG)}"
    tail = http.request("GET", access["url"], headers={**headers, "Range": "bytes=-4"})
    assert tail.status == 206 and tail.data == b"tail"
    head = http.request("HEAD", access["url"], headers=headers)
    assert head.status == 200 and head.headers["Content-Length"] == str(len(BIG)) and head.data == b""


def test_the_download_endpoint_takes_a_uuid_too_and_empty_files(cluster: Any, alice: ApiClient, dataset: dict) -> None:
    answer = get(f"{cluster.api_url}/arvados/v1/collections/{dataset['uuid']}/files/README.md", alice.token)
    assert answer.status == 200 and answer.data == b"# cohort\n"
    assert answer.headers["Content-Type"] == "text/markdown"
    directory = get(f"{cluster.api_url}/arvados/v1/collections/{dataset['uuid']}/files/reads", alice.token)
    assert directory.status == 400 and "is a directory" in directory.json()["errors"][0]


def test_service_info_describes_drs_1_5(cluster: Any) -> None:
    info = get(f"{cluster.api_url}/ga4gh/drs/v1/service-info", None).json()
    assert info["type"] == {"group": "org.ga4gh", "artifact": "drs", "version": "1.5.0"}
    assert info["id"] == "org.archipelago.z1111.drs" and info["maxBulkRequestLength"] >= 1


def test_checksums_are_computed_once_and_kept(cluster: Any, alice: ApiClient, dataset: dict) -> None:
    """Kept in the cluster's database under PDH + path (any API process finds it there)."""
    import sqlalchemy

    drs_id = f"{dataset['portable_data_hash']}/reads/sample2.fastq"
    get(f"{cluster.api_url}/ga4gh/drs/v1/objects/{quote(drs_id, safe='')}", alice.token)
    engine = sqlalchemy.create_engine(cluster.config.database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        rows = connection.execute(sqlalchemy.text(
            "select checksum from file_checksums where pdh = :pdh and path = :path and algorithm = 'md5'"),
            {"pdh": dataset["portable_data_hash"], "path": "reads/sample2.fastq"}).all()
    assert rows == [(hashlib.md5(b"ACGT\n" * 10).hexdigest(),)]
