"""Rendezvous (highest random weight) ordering of keep services, bit-exact with Arvados clients."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def service_weight(block_hash: str, service_uuid: str) -> str:
    """md5(hash + last 15 chars of the service UUID), compared as hex strings."""
    return hashlib.md5((block_hash[:32] + service_uuid[-15:]).encode()).hexdigest()


def rendezvous_order(block_hash: str, items: Iterable[T], uuid_of: Callable[[T], str] = str) -> list[T]:
    """Items sorted heaviest first: the order clients probe services for a block."""
    return sorted(items, key=lambda item: service_weight(block_hash, uuid_of(item)), reverse=True)

