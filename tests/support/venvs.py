"""Virtual environments of a test's own, for official tools whose pins clash with ours (the
official arvados-cwl-runner pins an old cwltool). Built once per machine and reused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def tool_venv(name: str, requirement: str) -> Path:
    """The bin/ directory of a venv with `requirement` installed; skips the test if it cannot be built."""
    # not under /tmp: bubblewrap containers get a fresh /tmp, and a test may put this venv on their PATH
    root = Path.home() / ".cache" / "archipelago" / f"{name}-venv"
    marker = root / ".installed"
    if marker.exists() and marker.read_text() == requirement:
        return root / "bin"
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True)
    result = subprocess.run([str(root / "bin" / "pip"), "install", "-q", requirement], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"could not install {requirement}: {result.stderr.strip().splitlines()[-1:]}")
    marker.write_text(requirement)
    return root / "bin"
