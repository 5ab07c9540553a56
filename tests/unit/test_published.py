"""What a container leaves in its published directory is judged as a stranger's words: the API
server connects only to a socket of the container's own, never through a link it planted (a link to
the Docker daemon's socket would hand a tenant the host), never to a file of another owner."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from archipelago.executor.published import NotPublished, open_socket, publish, unpublish

UUID = "z1111-dz642-000000000000001"


def listening(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    return server


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """The container's directory (as the executor stages a tmp mount), linked as the executor does."""
    directory = tmp_path / "crunch" / "mounts" / "mount2"
    directory.mkdir(parents=True)
    publish(tmp_path, UUID, directory)
    return directory


def test_the_containers_own_socket_is_reached_through_the_descriptor(tmp_path: Path, published: Path) -> None:
    server = listening(published / "http.sock")
    fd = open_socket(tmp_path, UUID)
    client = socket.socket(socket.AF_UNIX)
    client.connect(f"/proc/self/fd/{fd}")
    accepted, _ = server.accept()
    client.sendall(b"hello")
    assert accepted.recv(5) == b"hello"
    for handle in (client, accepted, server):
        handle.close()
    os.close(fd)


def test_a_link_planted_in_place_of_the_socket_is_not_followed(tmp_path: Path, published: Path) -> None:
    elsewhere = tmp_path / "host-daemon.sock"  # what a tenant would like to reach
    server = listening(elsewhere)
    (published / "http.sock").symlink_to(elsewhere)
    with pytest.raises(NotPublished):
        open_socket(tmp_path, UUID)
    server.close()


def test_a_file_that_is_not_a_socket_is_refused(tmp_path: Path, published: Path) -> None:
    (published / "http.sock").write_text("not a socket")
    with pytest.raises(NotPublished, match="not a socket of its own"):
        open_socket(tmp_path, UUID)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another owner needs root")
def test_a_socket_of_another_owner_than_the_directory_is_refused(tmp_path: Path, published: Path) -> None:
    os.chown(published, 200_123, 200_123)  # the sandbox user owns the directory...
    server = listening(published / "http.sock")  # ...but the socket is someone else's (here: root's)
    with pytest.raises(NotPublished, match="not a socket of its own"):
        open_socket(tmp_path, UUID)
    server.close()


def test_nothing_is_published_for_other_names_or_after_the_container(tmp_path: Path, published: Path) -> None:
    server = listening(published / "http.sock")
    for name in ("../crunch", "z1111-dz642-000000000000002", "", "/etc"):
        with pytest.raises(NotPublished):
            open_socket(tmp_path, name)
    unpublish(tmp_path / "archipelago-published" / UUID)
    with pytest.raises(NotPublished):
        open_socket(tmp_path, UUID)
    server.close()
