"""The GA4GH OpenAPI documents in ../shared/ga4gh/, loaded for schemathesis as they are on disk.

Both documents `$ref` the service-info schema by its public URL, which cannot be reached here:
schemathesis' retriever is pointed at the local copy of that document for that URL (and refuses
any other remote document), so the documents themselves stay unmodified."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "ga4gh"
DRS = SHARED / "drs-1.5" / "openapi" / "data_repository_service.openapi.yaml"
WES = SHARED / "wes-1.1" / "openapi" / "workflow_execution_service.openapi.yaml"
SERVICE_INFO_URL = "https://raw.githubusercontent.com/ga4gh-discovery/ga4gh-service-info/v1.0.0/service-info.yaml"
SERVICE_INFO = SHARED / "service-info-1.0.0" / "service-info.yaml"


def local_documents(uri: str) -> Any:
    if uri.split("#")[0] == SERVICE_INFO_URL:
        return yaml.safe_load(SERVICE_INFO.read_text())
    raise LookupError(f"{uri}: only the local copy of the service-info schema is available here")


@contextmanager
def offline_references() -> Iterator[None]:
    from schemathesis.core.jsonschema import resolver

    original = resolver.load_remote_uri
    resolver.load_remote_uri = local_documents
    try:
        yield
    finally:
        resolver.load_remote_uri = original
