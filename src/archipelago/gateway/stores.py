"""Where a gateway's data lies: one small interface, one class per kind of store."""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from types import TracebackType
from typing import Any, Protocol

from ..config import GatewayConfig
from ..errors import ArchipelagoError, BadGateway, BadRequest, NotFound
from ..keep.http import KeepConnections, read_into
from .urls import BaseUrl

MOVED_PREFIX = "archipelago-blocks/"  # objects a gateway writes itself (blocks moved to it)
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5


class ObjectChanged(Exception):
    """The object is no longer the version the gateway mapped (the store said so before sending a byte)."""


@dataclass(frozen=True)
class StoredObject:
    name: str  # relative to the store, "/"-separated
    size: int
    version: str  # changes whenever the object does (mtime and size; an ETag)


class Source(Protocol):
    """An object (or a range of it) being read; closed by `with`."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readinto(self, buffer: memoryview, /) -> int | None: ...

    def __enter__(self) -> Source: ...

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None, /) -> object: ...


class ObjectStore(Protocol):
    def objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under `prefix` ("" for all; an object's own name for just it), sorted."""
        ...

    def open(self, name: str, version: str, offset: int = 0, length: int | None = None) -> Source:
        """The object from `offset` (`length` bytes of it, or to its end) as a stream; ObjectChanged
        if the store can tell it is no longer `version` (S3 and HTTP check the ETag, a path its
        mtime and size). The block's md5 is checked by the reader regardless: a store that cannot
        tell is caught there."""
        ...

    def write(self, name: str, data: bytes) -> str:
        """Store a whole object (a block moved here), all or nothing; returns its version."""
        ...

    def delete(self, name: str) -> None:
        """Remove an object this gateway wrote (a moved block, released); gone already is fine."""
        ...


class PathStore:
    """Files under a directory (local or NFS). Names never leave the root: a name is resolved (its
    symlinks followed) and checked against the root, then opened one component at a time from the
    root's descriptor without following any symlink, so a link swapped in after the check makes the
    open fail instead of leading out. A symlink in the root that leads out of it is refused when
    listed; one leading elsewhere in the root is followed."""

    def __init__(self, root: Path):
        self.root = root.resolve()

    def _path(self, name: str) -> Path:
        if "\0" in name:
            raise BadRequest(f"{name!r} holds a NUL")
        path = (self.root / name).resolve()
        if path != self.root and not path.is_relative_to(self.root):
            raise BadRequest(f"{name!r} is outside this gateway's root")
        return path

    def _parts(self, name: str) -> tuple[list[str], str]:
        """The directories and the file name of `name`'s real path below the root."""
        parts = self._path(name).relative_to(self.root).parts
        if not parts:
            raise BadRequest(f"{name!r} is this gateway's root, not a file in it")
        return list(parts[:-1]), parts[-1]

    def _directory(self, name: str, parts: list[str], create: bool = False) -> int:
        """A descriptor of the directory `parts` below the root, reached without following a symlink."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for part in parts:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, dir_fd=fd)
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = inner
        except OSError as exc:
            os.close(fd)
            raise _refusal(name, exc) from None
        return fd

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        start = self._path(prefix)
        if start.is_file():
            yield self._object(start)
            return
        if not start.is_dir():
            raise NotFound(f"{prefix!r} is not under this gateway's root {self.root}")
        for directory, dirnames, filenames in os.walk(start):
            dirnames.sort()
            for filename in sorted(filenames):
                path = Path(directory) / filename
                if path.is_symlink() and not path.resolve().is_relative_to(self.root):
                    raise BadRequest(f"{path.relative_to(self.root).as_posix()!r} is a symlink leading out of "
                                     f"this gateway's root: it cannot be registered")
                if path.is_file():
                    yield self._object(path)

    def _object(self, path: Path) -> StoredObject:
        stat = path.stat()
        return StoredObject(path.relative_to(self.root).as_posix(), stat.st_size, f"{stat.st_mtime_ns}-{stat.st_size}")

    def open(self, name: str, version: str, offset: int = 0, length: int | None = None) -> Source:
        parents, filename = self._parts(name)
        directory = self._directory(name, parents)
        try:  # O_NONBLOCK: a FIFO swapped in does not hang the open (it is refused below)
            fd = os.open(filename, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
        except OSError as exc:
            raise _refusal(name, exc) from None
        finally:
            os.close(directory)
        handle = os.fdopen(fd, "rb")
        stat = os.fstat(fd)  # of the file opened, not of whatever is at the path later
        if not S_ISREG(stat.st_mode):
            handle.close()
            raise BadRequest(f"{name!r} is not a regular file")
        if f"{stat.st_mtime_ns}-{stat.st_size}" != version:
            handle.close()
            raise ObjectChanged(f"{name!r} was modified")
        handle.seek(offset)
        return handle

    def write(self, name: str, data: bytes) -> str:
        parents, filename = self._parts(name)
        directory = self._directory(name, parents, create=True)
        temp = f".{filename}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666, dir_fd=directory)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, filename, src_dir_fd=directory, dst_dir_fd=directory)  # whole or not at all
            stat = os.stat(filename, dir_fd=directory, follow_symlinks=False)
        finally:
            os.close(directory)
        return f"{stat.st_mtime_ns}-{stat.st_size}"

    def delete(self, name: str) -> None:
        parents, filename = self._parts(name)
        try:
            directory = self._directory(name, parents)
        except NotFound:
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(filename, dir_fd=directory)
        finally:
            os.close(directory)


def _refusal(name: str, exc: OSError) -> ArchipelagoError:
    """An open below the root that failed: gone, or a symlink met where the checked name had none."""
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"{name!r} is gone from this gateway's root")
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return BadRequest(f"{name!r} changed into a symlink since it was checked: refused")
    return ArchipelagoError(f"{name!r} cannot be opened: {exc.strerror}", 502)


class S3Store:
    """Objects in an S3 bucket (any endpoint); the credentials stay with the gateway."""

    def __init__(self, endpoint: str | None, bucket: str, region: str, access_key: str | None,
                 secret_key: str | None):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self._s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=access_key,
                                aws_secret_access_key=secret_key,
                                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}))

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        found = False
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key == prefix or not prefix or prefix.endswith("/") or key.startswith(prefix + "/"):
                    found = True
                    yield StoredObject(key, int(item["Size"]), str(item["ETag"]))
        if not found:
            raise NotFound(f"no objects under s3://{self.bucket}/{prefix}")

    def open(self, name: str, version: str, offset: int = 0, length: int | None = None) -> Source:
        from botocore.exceptions import ClientError

        ranged = {"Range": _range(offset, length)} if offset or length is not None else {}
        try:  # If-Match: S3 refuses (412) rather than send another version's bytes
            answer = self._s3.get_object(Bucket=self.bucket, Key=name, IfMatch=version, **ranged)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412"):
                raise ObjectChanged(f"s3://{self.bucket}/{name} has another ETag now") from None
            if code in ("NoSuchKey", "404"):
                raise NotFound(f"s3://{self.bucket}/{name} is gone") from None
            raise
        return _DirectBody(answer["Body"])

    def write(self, name: str, data: bytes) -> str:
        md5 = hashlib.md5(data)
        answer = self._s3.put_object(Bucket=self.bucket, Key=name, Body=data,  # S3 refuses a body that does
                                     ContentMD5=base64.b64encode(md5.digest()).decode())  # not match
        return str(answer["ETag"])

    def delete(self, name: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=name)


class _DirectBody:
    """botocore's body, read into the caller's buffer without urllib3's copy (keep/http.read_into)."""

    def __init__(self, body: Any):
        self._body = body

    def read(self, size: int = -1, /) -> bytes:
        return bytes(self._body.read(None if size < 0 else size))

    def readinto(self, buffer: memoryview, /) -> int | None:
        raw = getattr(self._body, "_raw_stream", None)  # urllib3's answer, beneath botocore's wrapper
        return read_into(raw, buffer) if raw is not None else self._body.readinto(buffer)

    def __enter__(self) -> _DirectBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self._body.close()


class HttpStore:
    """Objects behind a web server that answers byte ranges; names are paths below `base_url`.
    A web server cannot be listed: a name is registered as one object. Names are judged decoded,
    as the server reads them, and the URL fetched is rebuilt from what was judged (urls.py);
    redirects are followed here, each one only if it stays below `base_url`."""

    def __init__(self, base_url: str):
        self.base = BaseUrl(base_url)
        self.base_url = self.base.text
        # the keep client's connections (its timeouts); urllib3 reconnects up to 3 times on its own
        self._http = KeepConnections(retries=3)

    def _url(self, name: str) -> str:
        return self.base.url_for(name)

    def _request(self, method: str, name: str, headers: dict[str, str], preload: bool = True) -> Any:
        """The answer for `name`, redirects followed only below the base URL (urllib3 would follow
        them anywhere: to the cluster's keepstore on loopback, say)."""
        url = self._url(name)
        for _ in range(MAX_REDIRECTS + 1):
            answer = self._http.fetch(method, url, headers, preload)
            if answer.status not in REDIRECTS:
                return answer
            location = answer.headers.get("Location")
            answer.drain_conn()
            answer.release_conn()
            if not location:
                raise BadGateway(f"{url} answered HTTP {answer.status} without a Location")
            url = self.base.follow(url, location)
        raise BadGateway(f"{self._url(name)} redirects more than {MAX_REDIRECTS} times")

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        answer = self._request("HEAD", prefix, {})
        if answer.status != 200:
            raise NotFound(f"{self._url(prefix)} answered HTTP {answer.status}")
        if "Content-Length" not in answer.headers:  # registering it as empty would be silently wrong
            raise BadGateway(f"{self._url(prefix)} does not say how large it is (no Content-Length): "
                             f"it cannot be registered")
        version = answer.headers.get("ETag") or answer.headers.get("Last-Modified") or ""
        yield StoredObject(prefix.strip("/"), int(answer.headers["Content-Length"]), version)

    def open(self, name: str, version: str, offset: int = 0, length: int | None = None) -> Source:
        headers = {"Range": _range(offset, length)} if offset or length is not None else {}
        headers.update(_unchanged_since(version))
        answer = self._request("GET", name, headers, preload=False)
        if answer.status == 412:
            answer.release_conn()
            raise ObjectChanged(f"{self._url(name)} is no longer version {version}")
        if answer.status == 200 and offset:  # a server that ignores ranges: skip to the block
            answer.read(offset)
        elif answer.status not in (200, 206):
            answer.release_conn()
            raise NotFound(f"{self._url(name)} answered HTTP {answer.status}")
        source: Source = answer
        return source

    def write(self, name: str, data: bytes) -> str:
        raise ArchipelagoError("an HTTP gateway is read-only: data cannot be moved to it", 405)

    def delete(self, name: str) -> None:
        raise ArchipelagoError("an HTTP gateway is read-only: it holds no objects of its own", 405)


def _range(offset: int, length: int | None) -> str:
    return f"bytes={offset}-{'' if length is None else offset + length - 1}"


def _unchanged_since(version: str) -> dict[str, str]:
    """The condition under which a web server sends `version` or 412: a strong ETag must match;
    a Last-Modified date must not have passed; a weak ETag proves nothing (md5 decides)."""
    if version.startswith('"'):
        return {"If-Match": version}
    if version and not version.startswith("W/"):
        return {"If-Unmodified-Since": version}
    return {}


def store_for(gateway: GatewayConfig) -> ObjectStore:
    if gateway.driver == "s3":
        return S3Store(gateway.endpoint, str(gateway.bucket), gateway.region, gateway.access_key, gateway.secret_key)
    if gateway.driver == "http":
        return HttpStore(str(gateway.base_url))
    return PathStore(Path(str(gateway.root)))
