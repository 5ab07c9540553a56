"""A site's tools (containers.host_path: a new cluster's own virtualenv) stay visible when they live
below a directory a container mounts over: a clone under /tmp, where a CWL step mounts its own /tmp,
ran the host's system python3 instead of the virtualenv's."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from archipelago.executor.mounts import Bind
from archipelago.executor.runtimes import Bubblewrap, Job
from archipelago.executor.sandbox import claim_user, shown_over_mounts


def test_only_what_a_mount_covers_is_shown_again() -> None:
    visible = [Path("/usr"), Path("/tmp/clone/.venv"), Path("/opt/tools")]
    assert shown_over_mounts(visible, ["/tmp", "/out"]) == ["--perms", "0755", "--dir", "/tmp/clone",
                                                             "--ro-bind", "/tmp/clone/.venv", "/tmp/clone/.venv"]
    assert shown_over_mounts(visible, ["/tmpx", "/"]) == []


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="switching to a sandbox uid needs root")
def test_a_site_tool_below_the_jobs_tmp_mount_still_runs(tmp_path: Path) -> None:
    assert str(tmp_path).startswith("/tmp/"), "this test needs its temporary directory under /tmp"
    tools = tmp_path / "site-tools"
    tools.mkdir()
    (tools / "hello-site").write_text("#!/bin/sh\necho hello from the site\n")
    (tools / "hello-site").chmod(0o755)
    for parent in (tmp_path, *tmp_path.parents):  # the sandbox user walks down to it, as to a clone under /tmp
        if str(parent).startswith("/tmp/"):
            parent.chmod(parent.stat().st_mode | 0o755)
    job_tmp = tmp_path / "job-tmp"
    job_tmp.mkdir(mode=0o1777)
    user = claim_user(tmp_path / "locks", 300_200, 5)
    job = Job(["hello-site"], "/", {"PATH": f"{tools}:/usr/bin:/bin"}, [Bind(job_tmp, "/tmp", True)], False, None,
              "t", user, tmp_path / "scratch", host_path=[str(tools)])
    launch = Bubblewrap().launch(job)
    try:
        run = subprocess.run(launch.argv, env=launch.env, pass_fds=launch.pass_fds, capture_output=True, text=True,
                             timeout=60)
    finally:
        launch.close()
    assert run.returncode == 0 and run.stdout.strip() == "hello from the site", run.stderr
