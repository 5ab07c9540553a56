"""A Docker engine of the test's own (Debian's dockerd, started as the machine notes say: no TCP
listener, no bridge, no iptables changes, lower ulimits), and a tiny image built from Debian's
busybox-static and stored in Keep the way arv-keepdocker stores images."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from archipelago.sdk import ApiClient, Collection

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "echo", "cat", "wc", "ls", "sleep", "head", "hostname", "true", "false", "id", "ln", "mkfifo",
           "mount", "wget", "kill", "touch", "mkdir", "grep")


def unavailable() -> str | None:
    """None if dockerd can run here, else why not."""
    for tool in ("dockerd", "docker"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install docker.io)"
    if not BUSYBOX.exists():
        return "busybox-static is not installed (apt-get install busybox-static)"
    return None


@contextmanager
def dockerd(scratch: Path) -> Iterator[str]:
    """A running dockerd; yields its DOCKER_HOST."""
    for sub in ("data", "exec"):
        (scratch / sub).mkdir(parents=True, exist_ok=True)
    host = f"unix://{scratch / 'docker.sock'}"
    log = open(scratch / "dockerd.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        ["dockerd", "--data-root", str(scratch / "data"), "--exec-root", str(scratch / "exec"), "-H", host,
         "--pidfile", str(scratch / "docker.pid"), "--bridge=none", "--iptables=false", "--ip6tables=false",
         "--ip-masq=false", "--userland-proxy=false", "--default-ulimit", "nofile=1024:1024",
         "--default-ulimit", "nproc=1024:1024"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["docker", "-H", host, "info"], capture_output=True).returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not start: {(scratch / 'dockerd.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield host
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def busybox_image_in_keep(client: ApiClient, engine: list[str], scratch: Path, repo_tag: str) -> str:
    """Build the image (with `engine`: the docker or podman command and its global options), save it,
    store the tar in Keep with arv-keepdocker's links, and remove it from the engine (so a container
    must load it from Keep); returns the image collection's PDH."""
    root = scratch / "rootfs"
    (root / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    docker = engine
    tar = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True, check=True).stdout
    subprocess.run([*docker, "import", "-", repo_tag], input=tar, capture_output=True, check=True)
    image_id = subprocess.run([*docker, "image", "inspect", "--format", "{{.Id}}", repo_tag], capture_output=True,
                              text=True, check=True).stdout.strip()
    image_id = image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"
    saved = scratch / "image.tar"
    subprocess.run([*docker, "save", "-o", str(saved), repo_tag], check=True, capture_output=True)
    subprocess.run([*docker, "rmi", repo_tag], check=True, capture_output=True)
    collection = Collection(client)
    with open(saved, "rb") as handle:
        collection.write(f"{image_id}.tar", handle)
    record = collection.save_new(f"Docker image {repo_tag}")
    client.links.create({"link_class": "docker_image_hash", "name": image_id, "head_uuid": record["uuid"]})
    client.links.create({"link_class": "docker_image_repo+tag", "name": repo_tag, "head_uuid": record["uuid"]})
    return str(record["portable_data_hash"])
