"""Block volumes behind one interface: a local directory or an S3-compatible bucket."""

from ...config import VolumeConfig
from .base import BlockReader, BlockWriter, IndexEntry, Volume
from .directory import DirectoryVolume

__all__ = ["BlockReader", "BlockWriter", "DirectoryVolume", "IndexEntry", "Volume", "volume_from_config"]


def volume_from_config(config: VolumeConfig) -> Volume:
    uuid, read_only, classes = config.uuid or "", config.read_only, frozenset(config.storage_classes)
    if config.driver == "directory":
        assert config.root is not None  # the config's validator requires it
        return DirectoryVolume(uuid, read_only, classes, config.replication, root=config.root, fsync=config.fsync)
    from .s3 import S3Volume  # boto3 is slow to import; only S3 users pay for it

    return S3Volume(
        uuid, read_only, classes, config.replication,
        bucket=config.bucket or "",
        endpoint=config.endpoint,
        region=config.region,
        access_key=config.access_key,
        secret_key=config.secret_key,
        prefix=config.prefix,
    )
