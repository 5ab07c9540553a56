import pytest

from archipelago.config import ConfigError, load_config, parse_config


def test_defaults_fill_in_secrets_and_volume_uuids(tmp_path):
    cfg = parse_config({"cluster_id": "z1111", "volumes": [{"driver": "directory", "root": str(tmp_path)}]})
    assert cfg.volumes[0].uuid == "z1111-nyw5e-000000000000000"
    assert len(cfg.collections.blob_signing_key) >= 32
    assert cfg.default_storage_classes == ["default"]


@pytest.mark.parametrize(
    ("data", "key", "reason"),
    [
        ({"cluster_id": "TOOLONG"}, "cluster_id", "5 characters"),
        ({"cluster_id": "z1111", "volumes": [{"driver": "directory"}]}, "volumes.0", "needs 'root'"),
        ({"cluster_id": "z1111", "volumes": [{"driver": "s3"}]}, "volumes.0", "needs 'bucket'"),
        ({"cluster_id": "z1111", "volumes": [{"driver": "tape", "root": "/x"}]}, "volumes.0.driver", "directory"),
        ({"cluster_id": "z1111", "colections": {}}, "colections", "Extra inputs"),
        ({"cluster_id": "z1111", "collections": {"blob_signing_ttl": 0}}, "collections.blob_signing_ttl", "greater"),
        ({"cluster_id": "z1111", "volumes": [{"driver": "directory", "root": "/x", "storage_classes": ["gold"]}]},
         "storage_classes", "gold"),
        ({"cluster_id": "z1111", "login": {"login_cluster": "z9999"}}, "login.login_cluster", "neither"),
    ],
)
def test_errors_name_the_key_and_reason(data, key, reason):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert key in str(info.value) and reason in str(info.value)


def test_load_config_reports_unreadable_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("cluster_id: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
