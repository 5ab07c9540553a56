"""The executor reads what a container left in its output as a stranger's words (executor/outputs.py,
beneath.py): links are followed only into the output or a mounted collection, by descriptor, and
never to a host file; paths from the request never leave the container's directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from archipelago.errors import Unprocessable
from archipelago.executor.beneath import create_beneath, parts_below
from archipelago.executor.outputs import MountedCollection, OutputSaver, files_under
from archipelago.formats.manifest import parse

MANIFEST = ". 37b51d194a7513e45b56f6524f2d51f2+3 0:3:top.txt\n./dir 0cc175b9c0f1b6a831c399e269772661+1 0:1:a.txt\n"


class RecordingCollection:
    """Stands in for sdk.Collection (what the saver adds, recorded; no server involved)."""

    def __init__(self) -> None:
        self.written: dict[str, bytes] = {}
        self.linked: dict[str, list] = {}
        self.dirs: list[str] = []

    def write(self, path: str, source) -> None:
        self.written[path] = source.read()

    def link(self, path: str, segments: list) -> None:
        self.linked[path] = segments

    def mkdir(self, path: str) -> None:
        self.dirs.append(path)


def save(output: Path, log: list[str], globs: list[str] | None = None) -> RecordingCollection:
    collection = RecordingCollection()
    mounts = [MountedCollection("/in", MANIFEST), MountedCollection("/one", MANIFEST, "dir/a.txt")]
    OutputSaver(output, "/out", mounts, "/keep", lambda pdh: MANIFEST if pdh.startswith("d") else None, log.append,
                globs).save(collection)
    return collection


def test_files_and_links_inside_the_output_are_saved_as_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "real.txt").write_bytes(b"real")
    (tmp_path / "empty").mkdir()
    os.symlink("sub/real.txt", tmp_path / "relative")
    os.symlink("/out/sub/real.txt", tmp_path / "absolute")
    os.symlink("/out/sub", tmp_path / "dirlink")
    log: list[str] = []
    saved = save(tmp_path, log)
    assert saved.written == {"sub/real.txt": b"real", "relative": b"real", "absolute": b"real",
                             "dirlink/real.txt": b"real"}
    assert saved.dirs == ["empty"] and log == []


def test_links_out_of_the_output_are_refused_and_logged_never_read(tmp_path):
    host_secret = tmp_path.parent / f"{tmp_path.name}-secret"
    host_secret.write_bytes(b"host secret")
    output = tmp_path / "out"
    output.mkdir()
    os.symlink(str(host_secret), output / "absolute")
    os.symlink("../" + host_secret.name, output / "relative")  # lexically /secret: outside, whatever the host has
    os.symlink("/etc/passwd", output / "passwd")
    os.symlink("/out/../../etc/passwd", output / "climb")
    log: list[str] = []
    saved = save(output, log)
    assert saved.written == {} and saved.linked == {}
    assert len([line for line in log if "points outside the output directory" in line]) == 4


def test_a_link_through_a_link_out_of_the_output_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"host secret")
    output = tmp_path / "out"
    output.mkdir()
    os.symlink(str(outside), output / "escape")  # a directory link leading out
    os.symlink("/out/escape/secret", output / "via")  # lexically inside the output, really through the link
    log: list[str] = []
    saved = save(output, log)
    assert b"host secret" not in saved.written.values()
    assert any("via" in line for line in log)


def test_links_into_mounted_collections_are_saved_by_reference(tmp_path):
    os.symlink("/in/dir/a.txt", tmp_path / "file")
    os.symlink("/in/dir", tmp_path / "directory")
    os.symlink("/one", tmp_path / "single")
    os.symlink("/keep/d41d8cd98f00b204e9800998ecf8427e+0/top.txt", tmp_path / "kept")
    os.symlink("/keep/c41d8cd98f00b204e9800998ecf8427e+0/top.txt", tmp_path / "unreadable")
    os.symlink("/in/nope", tmp_path / "missing")
    log: list[str] = []
    saved = save(tmp_path, log)
    tree = parse(MANIFEST).tree()
    assert saved.linked == {"file": tree["./dir"]["a.txt"], "directory/a.txt": tree["./dir"]["a.txt"],
                            "single": tree["./dir"]["a.txt"], "kept": tree["."]["top.txt"]}
    assert saved.written == {}
    assert any("unreadable" in line for line in log) and any("missing" in line for line in log)


def test_special_files_and_loops_end_quietly(tmp_path):
    os.mkfifo(tmp_path / "fifo")  # opening it for reading would block the executor forever
    os.symlink(".", tmp_path / "loop")
    os.symlink("a", tmp_path / "b")
    os.symlink("b", tmp_path / "a")
    log: list[str] = []
    saved = save(tmp_path, log)
    assert saved.written == {} and saved.linked == {}
    assert any("not a regular file" in line for line in log)
    assert sum("leads back to itself" in line for line in log) == 3  # loop, a and b


def test_a_long_chain_of_links_ends(tmp_path):
    (tmp_path / "file").write_bytes(b"f")
    previous = "file"
    for n in range(20):
        os.symlink(previous, tmp_path / f"l{n}")
        previous = f"l{n}"
    log: list[str] = []
    saved = save(tmp_path, log)
    assert saved.written["l0"] == b"f" and "l19" not in saved.written
    assert any("l19" in line and "too many levels" in line for line in log)


def test_globs_choose_what_is_saved(tmp_path):
    (tmp_path / "keep.txt").write_bytes(b"k")
    (tmp_path / "drop.log").write_bytes(b"d")
    assert save(tmp_path, [], ["*.txt"]).written == {"keep.txt": b"k"}


def test_files_under_a_collection_path():
    tree = parse(MANIFEST).tree()
    assert files_under(tree, "") == {"top.txt": tree["."]["top.txt"], "dir/a.txt": tree["./dir"]["a.txt"]}
    assert files_under(tree, "dir") == {"a.txt": tree["./dir"]["a.txt"]}
    assert files_under(tree, "dir/a.txt") == {"": tree["./dir"]["a.txt"]}
    assert files_under(tree, "di") == {}


@pytest.mark.parametrize("path", ["/out/../etc/passwd", "/out/a/../../x", "/out//x", "/out/./x", "/etc/x", "/out",
                                  "/outside/x", "/out/x\0y"])
def test_request_paths_that_would_leave_the_output_are_refused(path):
    with pytest.raises(Unprocessable):
        parts_below(path, "/out")


def test_a_file_is_made_beneath_its_directory_without_following_links(tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (tmp_path / "host").mkdir()
    os.symlink(str(tmp_path / "host"), output / "logs")  # planted: would lead the write to the host
    with pytest.raises(OSError):
        create_beneath(output, ["logs", "stdout.txt"])
    assert not (tmp_path / "host" / "stdout.txt").exists()
    fd = create_beneath(output, ["new", "stdout.txt"])
    os.write(fd, b"ok")
    os.close(fd)
    assert (output / "new" / "stdout.txt").read_bytes() == b"ok"
