"""What `archi cluster init` writes: secrets owner-only from the first byte, whole; clean volume settings."""

import stat
from pathlib import Path

from archipelago.files import write_private
from archipelago.run.cluster import init_cluster


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_private_replaces_whole_and_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_text("old")
    target.chmod(0o644)
    write_private(target, "new")
    assert target.read_text() == "new" and mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]  # no temporary file left


def test_a_new_cluster_keeps_its_secrets_private(tmp_path: Path) -> None:
    result = init_cluster(tmp_path / "c", "z7777")
    for name in ("cluster.yml", "tls.key"):
        assert mode(tmp_path / "c" / name) == 0o600, name
    assert "system_root_token" in result.config_path.read_text()
    assert [p for p in (tmp_path / "c").iterdir() if p.name.endswith(".tmp")] == []


def test_a_volume_is_written_with_its_own_drivers_settings_only(tmp_path: Path) -> None:
    init_cluster(tmp_path / "c", "z7778")
    text = (tmp_path / "c" / "cluster.yml").read_text()
    assert "root: keep" in text
    for s3_only in ("region:", "prefix:", "bucket:", "access_key:"):
        assert s3_only not in text
