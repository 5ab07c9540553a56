"""WES requests as a client sends them: multipart run requests, polling a run to its end."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import urllib3

http = urllib3.PoolManager(cert_reqs="CERT_NONE", retries=False)
FINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}


def call(method: str, url: str, token: str | None, **kwargs: Any) -> urllib3.BaseHTTPResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.request(method, url, headers=headers, **kwargs)


def run_request(workflow: str, params: dict[str, Any], attachments: dict[str, Path | bytes],
                version: str = "v1.2", **extra: str) -> list[tuple[str, Any]]:
    """The multipart fields of a RunRequest (workflow_attachment once per file, as wes-client sends it)."""
    fields: list[tuple[str, Any]] = [("workflow_url", workflow), ("workflow_type", "CWL"),
                                     ("workflow_type_version", version), ("workflow_params", json.dumps(params)),
                                     *extra.items()]
    for name, source in attachments.items():
        data = source.read_bytes() if isinstance(source, Path) else source
        fields.append(("workflow_attachment", (name, data, "application/octet-stream")))
    return fields


def submit(base: str, token: str | None, fields: list[tuple[str, Any]]) -> urllib3.BaseHTTPResponse:
    body, content_type = urllib3.encode_multipart_formdata(fields)
    headers = {"Content-Type": content_type, **({"Authorization": f"Bearer {token}"} if token else {})}
    return http.request("POST", f"{base}/ga4gh/wes/v1/runs", body=body, headers=headers)


def wait_final(base: str, token: str, run_id: str, limit: float = 240) -> str:
    """Poll the run's status until it is final (a bound, not a timed assertion: a stuck run fails
    with its last state)."""
    deadline = time.monotonic() + limit
    state = "UNKNOWN"
    while time.monotonic() < deadline:
        state = call("GET", f"{base}/ga4gh/wes/v1/runs/{run_id}/status", token).json()["state"]
        if state in FINAL:
            return state
        time.sleep(0.5)
    return state
