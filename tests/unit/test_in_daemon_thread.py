"""run/cluster.in_daemon_thread: a call its caller stopped waiting for is not left running unseen."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest

from archipelago.run.cluster import in_daemon_thread


def test_a_result_nobody_waits_for_any_more_goes_to_abandoned() -> None:
    """A cluster stopped while its dispatcher was starting: the dispatcher that starts anyway is
    handed over to be stopped, not left running in the process."""
    release, handed_over = threading.Event(), threading.Event()
    late: list[object] = []
    started = object()

    def slow_start() -> object:
        release.wait(30)
        return started

    def abandoned(result: object) -> None:
        late.append(result)
        handed_over.set()

    async def main() -> None:
        waiting = asyncio.ensure_future(in_daemon_thread(slow_start, abandoned=abandoned))
        await asyncio.sleep(0)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        release.set()
        await asyncio.get_running_loop().run_in_executor(None, handed_over.wait, 30)

    asyncio.run(main())
    assert late == [started]


def test_a_result_awaited_is_returned_and_not_abandoned() -> None:
    late: list[object] = []

    async def main() -> int:
        return await in_daemon_thread(lambda: 7, abandoned=late.append)

    assert asyncio.run(main()) == 7
    assert late == []


def test_an_error_reaches_the_caller() -> None:
    def fails() -> None:
        raise LookupError("no such database")

    async def main() -> None:
        await in_daemon_thread(fails)

    with pytest.raises(LookupError, match="no such database"):
        asyncio.run(main())
