"""Container requests for tests: submit one, wait for it to end."""

from __future__ import annotations

import time
from typing import Any

from archipelago.sdk import ApiClient


def request_attrs(command: list[str], **overrides: Any) -> dict[str, Any]:
    return {"name": " ".join(command)[:100], "command": command, "container_image": None,
            "output_path": "/out", "cwd": "/out", "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 20}},
            "runtime_constraints": {"ram": 64 << 20, "vcpus": 1}, "priority": 500, "state": "Committed",
            **overrides}


def submit(client: ApiClient, command: list[str], cluster_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    params = {"cluster_id": cluster_id} if cluster_id else None
    return client.request("POST", "container_requests", params,
                          {"container_request": request_attrs(command, **overrides)})


def wait_final(client: ApiClient, uuid: str, timeout: float = 60) -> dict[str, Any]:
    """The request once Final (a bound, not a benchmark: fails the test if it never ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = client.container_requests.get(uuid)
        if request["state"] == "Final":
            return request
        time.sleep(0.1)
    raise AssertionError(f"{uuid} did not end within {timeout} s: {client.container_requests.get(uuid)}")


def wait_container(client: ApiClient, uuid: str, states: tuple[str, ...], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container = client.containers.get(uuid)
        if container["state"] in states:
            return container
        time.sleep(0.05)
    raise AssertionError(f"{uuid} never reached {states}: {client.containers.get(uuid)['state']}")


def container_of(client: ApiClient, request_uuid: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if uuid := client.container_requests.get(request_uuid).get("container_uuid"):
            return str(uuid)
        time.sleep(0.05)
    raise AssertionError(f"{request_uuid} got no container")


def register_image(client: ApiClient, repo_tag: str) -> str:
    """An image collection registered the way arv-keepdocker does (a `sha256:<id>.tar` file and
    links naming it), so clients that look images up find one. Its contents are a placeholder: the
    test clusters run containers with bubblewrap, which says in every log that no image is used."""
    import hashlib

    from archipelago.sdk import Collection

    image_id = hashlib.sha256(repo_tag.encode()).hexdigest()
    collection = Collection(client)
    collection.write(f"sha256:{image_id}.tar", b"placeholder image for " + repo_tag.encode())
    record = collection.save_new(f"Docker image {repo_tag}")
    client.links.create({"link_class": "docker_image_hash", "name": f"sha256:{image_id}",
                         "head_uuid": record["uuid"]})
    client.links.create({"link_class": "docker_image_repo+tag", "name": repo_tag, "head_uuid": record["uuid"]})
    return str(record["portable_data_hash"])
