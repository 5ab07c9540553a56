"""The official Arvados tools (arv-put, arv-ls, arv-get from PyPI) against our cluster, unchanged."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN))
    if path is None:
        pytest.skip(f"{name} not installed (pip install arvados-python-client)")
    return path


@pytest.fixture
def arvados_env(cluster, tmp_path):
    host = cluster.api_url.removeprefix("https://")
    return {**os.environ, "ARVADOS_API_HOST": host, "ARVADOS_API_TOKEN": cluster.admin_token,
            "ARVADOS_API_HOST_INSECURE": "1", "HOME": str(tmp_path),  # arv-put keeps its resume cache there
            "ARCHI_API_HOST": cluster.api_url, "ARCHI_API_TOKEN": cluster.admin_token,
            "ARCHI_API_HOST_INSECURE": "1"}


def make_tree(root: Path) -> Path:
    (root / "sub dir").mkdir(parents=True)
    (root / "a.txt").write_text("hello\n")
    (root / "sub dir" / "big.bin").write_bytes(os.urandom(5 << 20))
    for n in range(30):
        (root / "sub dir" / f"small-{n}.txt").write_text(f"{n}\n" * n)
    return root


def run(cmd: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{cmd[0]} failed:\n{result.stderr[-2000:]}"
    return result.stdout


def test_arv_put_ls_get_round_trip_and_archi_reads_it(arvados_env, tmp_path):
    src = make_tree(tmp_path / "src")
    uuid = run([tool("arv-put"), "--no-resume", "--name", "from arv-put", str(src)], arvados_env).strip()
    assert uuid.startswith("z1111-4zz18-")
    listing = run([tool("arv-ls"), uuid], arvados_env).splitlines()
    assert "./src/a.txt" in listing and "./src/sub dir/big.bin" in listing
    (tmp_path / "by-arv-get").mkdir()
    run([tool("arv-get"), "-r", f"{uuid}/", str(tmp_path / "by-arv-get") + "/"], arvados_env)
    assert not filecmp.dircmp(src, tmp_path / "by-arv-get" / "src").diff_files
    assert filecmp.cmp(src / "sub dir" / "big.bin", tmp_path / "by-arv-get" / "src" / "sub dir" / "big.bin",
                       shallow=False)
    # the same collection through our own CLI
    run([sys.executable, "-m", "archipelago", "get", uuid, str(tmp_path / "by-archi")], arvados_env)
    assert filecmp.cmp(src / "sub dir" / "big.bin", tmp_path / "by-archi" / "src" / "sub dir" / "big.bin",
                       shallow=False)


def test_archi_put_then_arv_get(arvados_env, tmp_path):
    src = make_tree(tmp_path / "src")
    out = run([sys.executable, "-m", "archipelago", "put", str(src), "--name", "from archi"], arvados_env)
    uuid = out.split()[0]
    (tmp_path / "dl").mkdir()
    run([tool("arv-get"), "-r", f"{uuid}/", str(tmp_path / "dl") + "/"], arvados_env)
    assert filecmp.cmp(src / "sub dir" / "big.bin", tmp_path / "dl" / "sub dir" / "big.bin", shallow=False)
    assert (tmp_path / "dl" / "a.txt").read_text() == "hello\n"
