"""A host-runtime container sees this site's software even when it is installed under /tmp (which
containers get fresh): the executor binds what would be hidden, and only that."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from archipelago.compute.executor import hidden_site_binds
from archipelago.compute.runtimes import Bubblewrap


def test_only_what_tmp_would_hide_is_bound_and_nested_paths_once(tmp_path):
    tools = tmp_path / "tools"
    (tools / "bin").mkdir(parents=True)
    binds = hidden_site_binds([str(tools), str(tools / "bin"), "/usr/bin", str(tmp_path / "missing")])
    sources = [b.source for b in binds]
    assert tools.resolve() in sources and (tools / "bin").resolve() not in sources
    assert Path("/usr/bin") not in sources and not any("missing" in str(s) for s in sources)
    assert all(not b.writable and b.target == str(b.source) for b in binds)


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_a_tool_installed_under_tmp_runs_in_a_bubblewrap_container(tmp_path):
    tools = tmp_path / "site-tools"
    tools.mkdir()
    (tools / "hello-site").write_text("#!/bin/sh\necho hello from the site\n")
    (tools / "hello-site").chmod(0o755)
    launch = Bubblewrap().launch(["hello-site"], "/", {"PATH": f"{tools}:/usr/bin:/bin"},
                                 hidden_site_binds([str(tools)]), False, None, "t", {})
    run = subprocess.run(launch.argv, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "hello from the site\n"
    hidden = Bubblewrap().launch(["hello-site"], "/", {"PATH": f"{tools}:/usr/bin:/bin"}, [], False, None, "t", {})
    assert subprocess.run(hidden.argv, capture_output=True, timeout=60).returncode != 0  # without the bind
