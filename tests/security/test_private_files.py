"""Another user of the cluster's host (here uid 65534, `nobody`) tries to read the admin token out of
the database and tenants' blocks out of the volume, by path. After a real `archi cluster init` and
`archi cluster up`, the cluster's directory is 0700 and what the cluster writes is owner-only; a
directory an older init left open is closed by `cluster up`, which says so in its log."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from archipelago.run.processes import ClusterProcess
from tests.support.keep_http import put

pytestmark = pytest.mark.integration
STRANGER = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def readable_by_a_stranger(path: Path) -> bool:
    """Can uid 65534 list this directory, or read this file?"""
    command = ["ls", str(path)] if path.is_dir() else ["cat", str(path)]
    return subprocess.run([*STRANGER, *command], capture_output=True).returncode == 0


def can_play_a_stranger() -> bool:
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


@pytest.fixture(scope="module")
def host() -> Iterator[Path]:
    """A directory every user of the host may enter (as /home or /srv are), unlike pytest's own."""
    parent = Path(tempfile.mkdtemp(prefix="archi-host-"))
    parent.chmod(0o755)
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(host: Path) -> Iterator[tuple[ClusterProcess, str]]:
    """`archi cluster init` and `archi cluster up` as a user runs them, and the md5 of a stored block."""
    init = subprocess.run([sys.executable, "-m", "archipelago", "cluster", "init", str(host / "cluster"),
                           "--cluster-id", "z3333", "--json"], capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    with ClusterProcess(host / "cluster") as process:
        resp = put(process.keep_url, b"a tenant's data\n", token=process.admin_token)
        assert resp.status == 200, resp.data
        yield process, resp.data.decode()[:32]


def files_of(process: ClusterProcess, md5: str) -> dict[str, Path]:
    directory = process.directory
    found = {"cluster directory": directory, "database": directory / "archipelago.db",
             "keep volume": directory / "keep", "block directory": directory / "keep" / md5[:3],
             "block": directory / "keep" / md5[:3] / md5, "admin token": directory / "admin-token",
             "configuration": directory / "cluster.yml"}
    for extra in ("archipelago.db-wal", "archipelago.db-shm", "remote-cache"):
        if (directory / extra).exists():
            found[extra] = directory / extra
    return found


def test_the_cluster_directory_database_and_blocks_are_owner_only(cluster):
    process, md5 = cluster
    files = files_of(process, md5)
    assert "archipelago.db-wal" in files  # the running cluster's WAL: as secret as the database
    for name, path in files.items():
        assert mode(path) & 0o077 == 0, f"{name} {path} is {oct(mode(path))}"
    assert mode(process.directory) == 0o700


@pytest.mark.skipif(not can_play_a_stranger(), reason="needs root and setpriv to act as another uid")
def test_another_user_of_the_host_reads_none_of_it(cluster, host):
    process, md5 = cluster
    (host / "public.txt").write_text("anyone may read this\n")
    (host / "public.txt").chmod(0o644)
    assert readable_by_a_stranger(host / "public.txt")  # the probe works: it is the modes that refuse
    for name, path in files_of(process, md5).items():
        assert not readable_by_a_stranger(path), f"uid 65534 read the {name} ({path})"
    row = subprocess.run([*STRANGER, sys.executable, "-c", "import sqlite3, sys; print(sqlite3.connect(sys.argv[1])"
                          ".execute('select api_token from api_client_authorizations').fetchall())",
                          str(process.directory / "archipelago.db")], capture_output=True, text=True)
    assert row.returncode != 0 and process.admin_token.split("/")[-1] not in row.stdout


def test_cluster_up_closes_a_directory_an_older_init_left_open(cluster):
    process, md5 = cluster
    process.stop()
    files = files_of(process, md5)
    for path in (files["cluster directory"], files["keep volume"]):  # as an older version left them
        path.chmod(0o755)
    process.start()
    assert mode(files["cluster directory"]) == 0o700 and mode(files["keep volume"]) == 0o700
    log = process.log_path.read_text()
    assert f"{process.directory} was readable by other users of this host" in log
    assert "was readable by other users of this host; now 0700" in log  # the volume's root


def test_init_makes_a_directory_that_already_existed_private(host):
    """`cluster init` into a directory that already exists (open to all) makes it private too."""
    existing = host / "existing"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    init = subprocess.run([sys.executable, "-m", "archipelago", "cluster", "init", str(existing),
                           "--cluster-id", "z3334", "--json"], capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    assert json.loads(init.stdout)["cluster_id"] == "z3334"
    assert mode(existing) == 0o700
    for path in existing.iterdir():
        assert mode(path) & 0o077 == 0, f"{path} is {oct(mode(path))}"


def test_a_directory_another_user_made_first_under_a_guessable_name_is_refused(tmp_path):
    """The dispatcher's pid files, the sandbox uid locks and the record of loaded images live under
    names anyone can guess: another host user who makes them first must not get them used."""
    from archipelago.errors import ArchipelagoError
    from archipelago.files import exclusive_directory

    tmp_path.chmod(0o755)
    planted = tmp_path / "archipelago-dispatch-z1111"
    planted.mkdir()
    os.chown(planted, 65534, 65534)
    with pytest.raises(ArchipelagoError, match="not a directory of this user"):
        exclusive_directory(planted)
    link = tmp_path / "archipelago-images"
    link.symlink_to(tmp_path)
    with pytest.raises(ArchipelagoError):
        exclusive_directory(link)
    mine = exclusive_directory(tmp_path / "archipelago-sandbox-users")
    assert oct(mine.stat().st_mode & 0o777) == "0o700"
