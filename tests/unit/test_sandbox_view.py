"""What a host-program container sees: the system's programs, the site's tools and this Archipelago,
read-only, and nothing else of the host (sandbox.py); and who it runs as."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archipelago.executor.mounts import Bind
from archipelago.executor.runtimes import Bubblewrap, Job
from archipelago.executor.sandbox import claim_user, site_software, view_arguments, visible_host_paths

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching to a sandbox uid needs root")


def test_the_view_is_the_system_the_site_tools_and_archipelago_only(tmp_path):
    tools = tmp_path / "tools"
    (tools / "bin").mkdir(parents=True)
    visible = visible_host_paths([str(tools), str(tools / "bin"), "/usr/bin", str(tmp_path / "missing")])
    assert Path("/usr") in visible and tools.resolve() in visible
    assert (tools / "bin").resolve() not in visible and Path("/usr/bin") not in visible  # inside one shown
    assert not any("missing" in str(p) for p in visible)
    for hidden in ("/root", "/home", "/tmp", "/var", "/srv", "/etc", "/etc/shadow", "/etc/munge", "/work"):
        assert Path(hidden) not in visible, hidden
    assert Path(sys.base_prefix).resolve() in visible or any(p in Path(sys.base_prefix).resolve().parents
                                                                for p in visible)


def test_a_virtualenvs_bin_brings_its_virtualenv(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert venv.resolve() in site_software([str(venv / "bin")])


def test_a_mount_inside_a_shown_directory_gets_a_place_of_its_own(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "c").write_text("c")
    args = view_arguments([tmp_path / "a"], [str(tmp_path / "a" / "b")])
    start = args.index(str(tmp_path / "a"))
    assert args[start - 1:start + 5] == ["--dir", str(tmp_path / "a"),
                                         "--ro-bind", str(tmp_path / "a" / "c"), str(tmp_path / "a" / "c")]
    assert str(tmp_path / "a" / "b") not in args  # the mount itself goes there
    assert ["--perms", "0755", "--dir", str(tmp_path)] == args[start - 5:start - 1]  # parents open to all


@needs_root
def test_each_running_container_gets_a_uid_of_its_own(tmp_path):
    first = claim_user(tmp_path, 300_000, 2)
    second = claim_user(tmp_path, 300_000, 2)
    assert {first.uid, second.uid} == {300_000, 300_001}
    with pytest.raises(Exception, match="in use"):
        claim_user(tmp_path, 300_000, 2)
    first.release()
    assert claim_user(tmp_path, 300_000, 2).uid == first.uid


@needs_bwrap
@needs_root
def test_a_tool_of_the_site_runs_as_the_sandbox_user_and_the_host_stays_hidden(tmp_path):
    tools = tmp_path / "site-tools"
    tools.mkdir()
    (tools / "hello-site").write_text("#!/bin/sh\necho hello from the site; id -u\n")
    (tools / "hello-site").chmod(0o755)
    secret = tmp_path / "secret.txt"
    secret.write_text("cluster secret")
    user = claim_user(tmp_path / "locks", 300_100, 5)
    job = Job(["sh", "-c", f"hello-site; cat {secret} 2>&1; ls /root 2>&1"], "/", {"PATH": f"{tools}:/usr/bin:/bin"},
              [], False, None, "t", user, tmp_path / "scratch", host_path=[str(tools)])
    run = launched(Bubblewrap().launch(job))
    assert run.stdout.splitlines()[:2] == ["hello from the site", str(user.uid)], run.stderr
    assert "cluster secret" not in run.stdout and "No such file" in run.stdout
    hidden = Job(["hello-site"], "/", {"PATH": f"{tools}:/usr/bin:/bin"}, [Bind(tmp_path / "x", "/x", False)],
                 False, None, "t", user, tmp_path / "scratch")
    assert launched(Bubblewrap().launch(hidden)).returncode != 0


def launched(launch) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(launch.argv, env=launch.env, pass_fds=launch.pass_fds, capture_output=True, text=True,
                              timeout=60)
    finally:
        launch.close()


@needs_bwrap
@needs_root
def test_the_environment_is_set_only_once_the_command_is_the_sandbox_user(tmp_path):
    """LD_PRELOAD and its kin reach the command, never the root stage that drops privileges; and the
    values are on no command line another host user could read."""
    spy = tmp_path / "spy.so"
    source = tmp_path / "spy.c"
    source.write_text('#include <stdio.h>\n#include <unistd.h>\n__attribute__((constructor)) static void spy(void)'
                      '{ FILE *f = fopen("/out/uids", "a"); if (f) { fprintf(f, "%d\\n", (int) getuid()); '
                      'fclose(f); } }\n')
    if shutil.which("gcc") is None or subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(spy), str(source)],
                                                     capture_output=True).returncode != 0:
        pytest.skip("no C compiler to build the preloaded library")
    out = tmp_path / "out"
    out.mkdir()
    user = claim_user(tmp_path / "locks", 300_200, 5)
    os.chown(out, user.uid, user.gid)
    spy.chmod(0o644)
    tmp_path.chmod(0o755)  # the library is readable by the sandbox user
    env = {"PATH": "/usr/bin:/bin", "LD_PRELOAD": "/lib-in/spy.so", "SECRET": "hunter2-in-the-environment"}
    job = Job(["sh", "-c", "echo $SECRET > /out/seen; cat /proc/1/cmdline > /out/cmdline"], "/out", env,
              [Bind(out, "/out", True), Bind(tmp_path, "/lib-in", False)], False, None, "t", user, tmp_path / "s")
    launch = Bubblewrap().launch(job)
    assert not any("hunter2" in arg or "spy.so" in arg for arg in launch.argv)
    assert launched(launch).returncode == 0
    assert (out / "seen").read_text() == "hunter2-in-the-environment\n"
    uids = {int(line) for line in (out / "uids").read_text().split()}
    assert uids == {user.uid}, uids  # the preloaded library ran, as the sandbox user only
    assert b"hunter2" not in (out / "cmdline").read_bytes()
