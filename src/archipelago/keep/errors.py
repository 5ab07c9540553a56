"""Keep errors, each carrying the HTTP status keepstore answers with (reference §4.1)."""

from __future__ import annotations

from ..errors import ArchipelagoError


class KeepError(ArchipelagoError):
    status = 500


class InvalidLocator(KeepError):
    status = 400


class HashMismatch(KeepError):
    """The body does not hash to the locator it was PUT under."""

    status = 400


class BlockNotFound(KeepError):
    status = 404


class BlockTooLarge(KeepError):
    status = 413


class CorruptBlock(KeepError):
    """Stored bytes no longer match their hash: reported, quarantined, never served."""

    status = 502


class VolumeUnavailable(KeepError):
    status = 503


class VolumeFull(KeepError):
    status = 507


class ReadOnly(KeepError):
    status = 405
