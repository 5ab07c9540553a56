"""A volume in an S3-compatible bucket: object `<prefix><md5>`, trash under `<prefix>trash/`.

A block is uploaded in one PutObject with Content-MD5, so the object store itself refuses a
body that does not hash to the key and a half-uploaded block is never visible.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ...keep.errors import BlockNotFound, ReadOnly, VolumeUnavailable
from .base import BlockReader, BlockWriter, IndexEntry, Volume

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _NOT_FOUND


class _ObjectReader(BlockReader):
    def __init__(self, response: dict[str, Any]):
        self._body = response["Body"]
        self.size = response["ContentLength"]
        self.mtime_ns = int(response["LastModified"].timestamp() * 1e9)

    def read(self, n: int) -> bytes:
        return self._body.read(n)

    def close(self) -> None:
        self._body.close()


class _ObjectWriter(BlockWriter):
    def __init__(self, volume: S3Volume, md5: str):
        self._volume, self._md5 = volume, md5
        self._buffer = bytearray()

    def write(self, chunk: bytes | memoryview) -> None:
        self._buffer += chunk

    def commit(self) -> None:
        content_md5 = base64.b64encode(bytes.fromhex(self._md5)).decode()
        self._volume._call(
            "put_object",
            Bucket=self._volume.bucket,
            Key=self._volume._key(self._md5),
            Body=bytes(self._buffer),
            ContentMD5=content_md5,
        )
        self._buffer = bytearray()

    def abort(self) -> None:
        self._buffer = bytearray()


@dataclass
class S3Volume(Volume):
    bucket: str = ""
    endpoint: str | None = None
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = None
    prefix: str = ""
    timeout: float = 60.0

    def __post_init__(self) -> None:
        self._client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                connect_timeout=self.timeout,
                read_timeout=self.timeout,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

    @property
    def device_id(self) -> str:
        return f"s3:{self.endpoint or 'aws'}/{self.bucket}/{self.prefix}"

    def _key(self, md5: str) -> str:
        return f"{self.prefix}{md5}"

    def _trash_key(self, md5: str) -> str:
        return f"{self.prefix}trash/{md5}"

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, method)(**kwargs)
        except ClientError as exc:
            if _missing(exc):
                raise BlockNotFound(kwargs.get("Key", "")) from None
            raise VolumeUnavailable(f"S3 {method} on bucket {self.bucket!r} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise VolumeUnavailable(f"S3 {method} on bucket {self.bucket!r} failed: {exc}") from exc

    def open(self, md5: str) -> BlockReader:
        return _ObjectReader(self._call("get_object", Bucket=self.bucket, Key=self._key(md5)))

    def writer(self, md5: str) -> BlockWriter:
        if self.read_only:
            raise ReadOnly(f"volume {self.uuid} is read-only")
        return _ObjectWriter(self, md5)

    def mtime_ns(self, md5: str) -> int | None:
        try:
            head = self._call("head_object", Bucket=self.bucket, Key=self._key(md5))
        except BlockNotFound:
            return None
        return int(head["LastModified"].timestamp() * 1e9)

    def touch(self, md5: str) -> None:
        if self.read_only:
            return
        key = self._key(md5)
        self._call(
            "copy_object",
            Bucket=self.bucket,
            Key=key,
            CopySource={"Bucket": self.bucket, "Key": key},
            MetadataDirective="REPLACE",
            Metadata={"touched": str(time.time())},
        )

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        token: dict[str, str] = {}
        while True:
            page = self._call("list_objects_v2", Bucket=self.bucket, Prefix=prefix, **token)
            yield from page.get("Contents", [])
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def index(self, prefix: str = "") -> Iterator[IndexEntry]:
        for obj in self._list(self.prefix + prefix):
            name = obj["Key"][len(self.prefix) :]
            if len(name) == 32 and "/" not in name:
                yield IndexEntry(name, obj["Size"], int(obj["LastModified"].timestamp() * 1e9))

    def trash(self, md5: str, delete_at: float) -> None:
        self._call(
            "copy_object",
            Bucket=self.bucket,
            Key=self._trash_key(md5),
            CopySource={"Bucket": self.bucket, "Key": self._key(md5)},
            MetadataDirective="REPLACE",
            Metadata={"delete-at": str(int(delete_at))},
        )
        self._call("delete_object", Bucket=self.bucket, Key=self._key(md5))

    def untrash(self, md5: str) -> bool:
        try:
            self._call(
                "copy_object",
                Bucket=self.bucket,
                Key=self._key(md5),
                CopySource={"Bucket": self.bucket, "Key": self._trash_key(md5)},
            )
        except BlockNotFound:
            return False
        self._call("delete_object", Bucket=self.bucket, Key=self._trash_key(md5))
        return True

    def empty_trash(self, now: float) -> int:
        deleted = 0
        for obj in self._list(f"{self.prefix}trash/"):
            head = self._call("head_object", Bucket=self.bucket, Key=obj["Key"])
            if int(head.get("Metadata", {}).get("delete-at", "0")) <= now:
                self._call("delete_object", Bucket=self.bucket, Key=obj["Key"])
                deleted += 1
        return deleted

    def quarantine(self, md5: str) -> None:
        self._call(
            "copy_object",
            Bucket=self.bucket,
            Key=f"{self.prefix}corrupt/{md5}",
            CopySource={"Bucket": self.bucket, "Key": self._key(md5)},
        )
        self._call("delete_object", Bucket=self.bucket, Key=self._key(md5))
