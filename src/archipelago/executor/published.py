"""Published services: a container serves HTTP on a unix socket in a directory of its own (a `tmp`
mount at PUBLISHED_TARGET), and the cluster's API server — on the same host, as the local
dispatcher runs containers — reaches it only through a link the executor makes under its work
root, named by the container's UUID. No network is needed (a bubblewrap container without API
access has none), and nothing else on the host can reach the socket: the link's directory is the
executor's alone (0700).

The container owns the socket's directory, so what it left there is judged as a stranger's words:
the socket is opened without following a link, must be a socket, and must belong to the owner of
its directory (the container's sandbox user); the connection is made through that open file."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from ..errors import ArchipelagoError
from ..files import exclusive_directory
from ..ids import UUID_RE

PUBLISHED_TARGET = "/var/run/archipelago"  # a tmp mount here makes the container's socket reachable
SOCKET_NAME = "http.sock"
LINKS = "archipelago-published"


class NotPublished(ArchipelagoError):
    status = 503


def links_directory(work_root: Path | None) -> Path:
    return Path(work_root or tempfile.gettempdir()) / LINKS


def publish(work_root: Path, container_uuid: str, host_directory: Path) -> Path:
    """Link the container's published directory where the API server finds it; returns the link."""
    link = exclusive_directory(links_directory(work_root)) / container_uuid
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(host_directory)
    return link


def unpublish(link: Path | None) -> None:
    if link is not None:
        with contextlib.suppress(FileNotFoundError):
            link.unlink()


def open_socket(work_root: Path | None, container_uuid: str) -> int:
    """An O_PATH descriptor of a running container's socket (connect to `/proc/self/fd/<fd>`);
    NotPublished (503) if there is none, or what is there is not the container's own socket."""
    if not UUID_RE.fullmatch(container_uuid):
        raise NotPublished(f"{container_uuid!r} is not a container UUID")
    directory = links_directory(work_root) / container_uuid
    try:
        owner = os.stat(directory).st_uid  # the link is ours; it leads to the container's directory
        fd = os.open(directory / SOCKET_NAME, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise NotPublished(f"container {container_uuid} serves nothing on this host ({exc.strerror}): it is "
                           "not running here, has not started its service yet, or runs on another node") from None
    info = os.fstat(fd)
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != owner:
        os.close(fd)
        raise NotPublished(f"container {container_uuid}'s {SOCKET_NAME} is not a socket of its own")
    return fd
