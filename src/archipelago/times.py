"""Timestamps as the API writes and reads them (UTC, Arvados' `...123456Z` form)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .errors import BadRequest


def now() -> datetime:
    return datetime.now(UTC)


def timestamp(value: datetime | None) -> str | None:
    """Arvados' `2026-11-22T22:36:02.123456Z` (isoformat: several times faster than strftime)."""
    if value is None:
        return None
    if value.tzinfo is not None:  # SQLite hands back naive UTC datetimes, PostgreSQL aware ones
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"invalid timestamp {value!r}") from None
