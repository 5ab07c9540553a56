"""What `make demo` and `make test` install, and that they say so: each target its own system
packages (the demo: bubblewrap and fuse3 only), each with the reason, and pip's progress shown."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "system-deps"
DEMO = {"bubblewrap", "fuse3"}
TEST = DEMO | {"docker.io", "runc", "podman", "busybox-static", "slurm-wlm", "munge"}


def planned(target: str) -> list[str]:
    """`make -n -B TARGET`: every command the target would run, from nothing."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_make_demo_installs_archipelago_without_the_test_tools_and_says_what_it_does() -> None:
    lines = planned("demo")
    installs = [line for line in lines if "pip install" in line and "-e" in line]
    assert installs == [".venv/bin/pip install -e ."]  # no --quiet: pip lists each package as it goes
    assert "scripts/system-deps demo" in lines
    assert not any("[test]" in line or "system-deps test" in line for line in lines)
    said = [line for line in lines if line.startswith("echo \"==>")]
    assert len(said) >= 4  # the environment, pip, Archipelago, the demo itself


def test_make_test_installs_the_test_tools_and_every_system_package() -> None:
    lines = planned("test")
    assert ".venv/bin/pip install -e '.[test]'" in lines and "scripts/system-deps test" in lines


def _dry_run(target: str) -> tuple[str, set[str]]:
    """The script on a machine where no command is found (an empty PATH): what it would install."""
    result = subprocess.run(["/bin/sh", str(SCRIPT), target, "--dry-run"], capture_output=True, text=True,
                            timeout=30, env={"PATH": "/nonexistent"})
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("==> would install:")
    return result.stdout, set(last.split(":", 1)[1].split())


def test_the_demo_needs_only_bubblewrap_and_fuse3_each_with_its_reason() -> None:
    out, missing = _dry_run("demo")
    assert missing == DEMO
    assert "sandbox every container runs in" in out and "mounting collections" in out


def test_the_tests_need_every_package_each_with_its_reason() -> None:
    out, missing = _dry_run("test")
    assert TEST - {"busybox-static"} <= missing  # (busybox is found by its path, whatever PATH says)
    listed = [line.split() for line in out.splitlines() if line.startswith("    ")]
    assert {words[0] for words in listed} >= TEST
    assert all(len(words) > 3 and words[1] in ("installed", "MISSING") for words in listed), listed  # and why


def test_the_benchmarks_need_what_the_tests_do_and_wrk() -> None:
    out, missing = _dry_run("bench")
    assert TEST - {"busybox-static"} <= missing and "wrk" in missing
    assert "api_list.py's load generator" in out


def test_an_unknown_target_is_a_usage_error() -> None:
    result = subprocess.run(["/bin/sh", str(SCRIPT), "everything"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "usage" in result.stderr
