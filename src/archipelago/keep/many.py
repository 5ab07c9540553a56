"""Many blocks in order, fetched ahead in parallel (at most max_workers in flight)."""

from __future__ import annotations

import mmap
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from threading import Lock
from typing import TYPE_CHECKING

from ..formats.locator import BLOCK_SIZE, Locator

if TYPE_CHECKING:
    from .client import KeepClient

POOLED_MIN = 1 << 20  # blocks above this size are received into pooled block-size buffers


def get_many(client: KeepClient, locators: Iterable[str | Locator]) -> Iterator[bytes | bytearray]:
    with ThreadPoolExecutor(client.max_workers) as pool:
        window: deque[Future[bytes | bytearray]] = deque()
        for locator in locators:
            window.append(pool.submit(client.get, locator))
            if len(window) >= client.max_workers * 2:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def stream_blocks(client: KeepClient, locators: Iterable[str | Locator]) -> Iterator[memoryview]:
    """Each view is valid only until the next one is requested: its buffer is then reused (a fresh
    64 MiB buffer per block costs page faults on every block)."""
    free: list[mmap.mmap] = []  # page-aligned: a writer may hand them to O_DIRECT (keep/transfer.py)
    lock = Lock()

    def fetch(locator: str | Locator) -> tuple[mmap.mmap | None, memoryview]:
        loc = locator if isinstance(locator, Locator) else Locator.parse(locator)
        if (loc.size or 0) <= POOLED_MIN:
            return None, memoryview(client.get(loc))
        with lock:
            buffer = free.pop() if free else mmap.mmap(-1, BLOCK_SIZE)
        return buffer, client.get_into(loc, buffer)

    with ThreadPoolExecutor(client.max_workers) as pool:
        window: deque[Future[tuple[mmap.mmap | None, memoryview]]] = deque()
        for locator in locators:
            window.append(pool.submit(fetch, locator))
            if len(window) > client.max_workers:
                buffer, view = window.popleft().result()
                yield view
                if buffer is not None:
                    with lock:
                        free.append(buffer)
        while window:
            yield window.popleft().result()[1]
