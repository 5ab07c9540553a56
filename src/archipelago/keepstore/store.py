"""Block placement across one keepstore's volumes, and the put transaction.

Placement follows Arvados keepstore: volumes sorted by storage-class priority (highest first),
then by ascending md5(hash + last 15 chars of the volume UUID). A put writes one copy per
requested storage class, to the first writable volume in that order which offers the class.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..config import ClusterConfig
from ..formats.locator import BLOCK_SIZE
from ..keep.errors import BlockNotFound, BlockTooLarge, HashMismatch, KeepError, VolumeFull, VolumeUnavailable
from ..keep.md5 import new_md5
from ..keep.rendezvous import service_weight
from .volumes import BlockReader, BlockWriter, Volume, volume_from_config

log = logging.getLogger(__name__)

FULL_VOLUME_RETRY_SECONDS = 60.0


@dataclass
class PutResult:
    replicas: int
    classes: dict[str, int]

    @property
    def classes_header(self) -> str:
        return ", ".join(f"{name}={count}" for name, count in sorted(self.classes.items()))


@dataclass
class PutTransaction:
    """One block on its way in: hashed and written in pieces, visible only after finish().

    `hash_chunk` and `write_chunk` may run concurrently in two threads (each in chunk order), which
    lets md5 and disk writes overlap.
    """

    md5: str
    writers: list[tuple[Volume, BlockWriter]]
    existing: list[Volume]
    classes: list[str]
    store: BlockStore
    size: int = 0
    _hasher: Any = field(default_factory=new_md5)  # in lanes with concurrent PUTs

    def hash_chunk(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        if self.size > BLOCK_SIZE:
            raise BlockTooLarge(f"block larger than {BLOCK_SIZE} bytes")
        self._hasher.update(chunk)

    def write_chunk(self, chunk: bytes | memoryview) -> None:
        for volume, writer in self.writers:
            try:
                writer.write(chunk)
            except VolumeFull:
                self.store.mark_full(volume)
                raise

    def hash_pieces(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.hash_chunk(piece)

    def write_pieces(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.write_chunk(piece)

    def write(self, chunk: bytes | memoryview) -> None:
        self.hash_chunk(chunk)
        self.write_chunk(chunk)

    def finish(self) -> PutResult:
        digest = self._hasher.hexdigest()
        if digest != self.md5:
            self.abort()
            raise HashMismatch(f"content hash {digest} did not match specified locator {self.md5}")
        stored: list[Volume] = []
        for volume, writer in self.writers:
            try:
                writer.commit()
                stored.append(volume)
            except KeepError as exc:
                if isinstance(exc, VolumeFull):
                    self.store.mark_full(volume)
                log.warning("commit of %s to volume %s failed: %s", self.md5, volume.uuid, exc)
        for volume in self.existing:
            volume.touch(self.md5)
            stored.append(volume)
        if not stored:
            raise VolumeFull(f"no volume could store block {self.md5}")
        return PutResult(
            replicas=sum(v.replication for v in stored),
            classes={c: sum(v.replication for v in stored if c in v.storage_classes) for c in self.classes},
        )

    def abort(self) -> None:
        for _, writer in self.writers:
            writer.abort()


class BlockStore:
    def __init__(self, volumes: Iterable[Volume], class_priority: dict[str, int] | None = None,
                 default_classes: Iterable[str] = ("default",)):
        self.volumes = list(volumes)
        self.class_priority = class_priority or {}
        self.default_classes = list(default_classes)
        self._full_until: dict[str, float] = {}

    @classmethod
    def from_config(cls, config: ClusterConfig) -> BlockStore:
        return cls(
            [volume_from_config(v) for v in config.volumes],
            {name: c.priority for name, c in config.storage_classes.items()},
            config.default_storage_classes,
        )

    def by_uuid(self, uuid: str) -> Volume:
        for volume in self.volumes:
            if volume.uuid == uuid:
                return volume
        raise BlockNotFound(f"no mount {uuid}")

    def _priority(self, volume: Volume) -> int:
        return max((self.class_priority.get(c, 0) for c in volume.storage_classes), default=0)

    def mounts_for(self, md5: str) -> list[Volume]:
        by_weight = sorted(self.volumes, key=lambda v: service_weight(md5, v.uuid))
        return sorted(by_weight, key=self._priority, reverse=True)

    def mark_full(self, volume: Volume) -> None:
        self._full_until[volume.uuid] = time.monotonic() + FULL_VOLUME_RETRY_SECONDS

    def _writable(self, volume: Volume) -> bool:
        return not volume.read_only and self._full_until.get(volume.uuid, 0) < time.monotonic()

    def open(self, md5: str) -> tuple[Volume, BlockReader]:
        """The first readable copy in placement order; unavailable volumes are skipped."""
        errors: list[KeepError] = []
        for volume in self.mounts_for(md5):
            try:
                return volume, volume.open(md5)
            except BlockNotFound:
                continue
            except KeepError as exc:
                errors.append(exc)
        if errors:
            raise VolumeUnavailable(f"block {md5} not readable: {errors[0]}")
        raise BlockNotFound(f"block {md5} not found")

    def report_corrupt(self, volume: Volume, md5: str, actual: str) -> None:
        log.error("corrupt block %s on volume %s (content hashes to %s): quarantined", md5, volume.uuid, actual)
        try:
            volume.quarantine(md5)
        except KeepError as exc:
            log.error("could not quarantine %s on %s: %s", md5, volume.uuid, exc)

    def begin_put(self, md5: str, classes: Iterable[str] | None = None) -> PutTransaction:
        wanted = list(classes or self.default_classes)
        unknown = [c for c in wanted if not any(c in v.storage_classes for v in self.volumes)]
        if unknown:
            raise VolumeUnavailable(f"no volume offers storage class(es) {', '.join(unknown)}")
        order = self.mounts_for(md5)
        chosen: list[Volume] = []
        for cls in wanted:
            if any(cls in v.storage_classes for v in chosen):
                continue
            candidate = next((v for v in order if cls in v.storage_classes and self._writable(v)), None)
            if candidate is None:
                raise VolumeFull(f"no writable volume with free space for storage class {cls}")
            chosen.append(candidate)
        existing = [v for v in chosen if v.mtime_ns(md5) is not None]
        writers = [(v, v.writer(md5)) for v in chosen if v not in existing]
        return PutTransaction(md5, writers, existing, wanted, self)

    def put(self, md5: str, data: bytes, classes: Iterable[str] | None = None) -> PutResult:
        txn = self.begin_put(md5, classes)
        try:
            txn.write(data)
        except BaseException:
            txn.abort()
            raise
        return txn.finish()

    # ------------------------------------------------------------ what the admin endpoints and workers ask
    def index(self, prefix: str = "", mount_uuid: str | None = None) -> str:
        """`md5+size mtime` lines of every block (on one mount, if named), and a closing blank line."""
        volumes = [self.by_uuid(mount_uuid)] if mount_uuid else self.volumes
        return "".join(f"{e.md5}+{e.size} {e.mtime_ns}\n" for v in volumes for e in v.index(prefix)) + "\n"

    def trash_if_unchanged(self, md5: str, block_mtime: object, mount_uuid: str | None, min_age: float,
                           delete_at: float, now: float) -> tuple[int, int]:
        """Trash a block keep-balance found unreferenced, only where it is unchanged since balance
        saw it (same mtime) and older than `min_age` seconds; (trashed, refused) copies."""
        volumes = [self.by_uuid(mount_uuid)] if mount_uuid else self.volumes
        trashed = refused = 0
        for volume in volumes:
            mtime = volume.mtime_ns(md5)
            if mtime is None or volume.read_only:
                continue
            if mtime != block_mtime or mtime / 1e9 > now - min_age:
                refused += 1  # rewritten since, or young enough that a client may still reference it
                continue
            volume.trash(md5, delete_at)
            trashed += 1
        return trashed, refused

    def untrash(self, md5: str) -> int:
        """Restore a trashed block on every writable volume; how many copies came back."""
        restored = sum(1 for volume in self.volumes if not volume.read_only and volume.untrash(md5))
        if not restored:
            raise BlockNotFound(f"block {md5} is not in the trash")
        return restored

    def empty_trash(self, now: float) -> int:
        """Delete trashed blocks whose time is up, on every writable volume; how many."""
        deleted = 0
        for volume in self.volumes:
            if not volume.read_only:
                try:
                    deleted += volume.empty_trash(now)
                except KeepError as exc:
                    log.warning("emptying the trash of %s failed: %s", volume.uuid, exc)
        return deleted

    def stored(self, md5: str) -> bool:
        try:
            self.open(md5)[1].close()
            return True
        except KeepError:
            return False
