"""Asking services in turn, with retries decided by the type of each failure, and the error a
caller reads when none gave what was asked."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

from ..formats.locator import Locator
from .errors import (
    BlockNotFound,
    KeepReadError,
    NotHeld,
    ServiceFailure,
    ServiceRefused,
    corrupt_services,
    describe,
)
from .services import KeepService

T = TypeVar("T")


def first_answer(services: list[KeepService], attempt: Callable[[KeepService], T | ServiceFailure],
                 retries: int, backoff: float) -> tuple[T | None, list[ServiceFailure]]:
    """(the answer of the first service that gives one — never None —, the failures met before it),
    asking the services in order; a service whose failure is retryable is asked again in the next
    round, after an exponential backoff."""
    failures: list[ServiceFailure] = []
    remaining = list(services)
    for round_ in range(retries + 1):
        if round_:
            time.sleep(backoff * 2 ** (round_ - 1))
        again = []
        for service in remaining:
            outcome = attempt(service)
            if not isinstance(outcome, ServiceFailure):
                return outcome, failures
            failures.append(outcome)
            if outcome.retryable:
                again.append(service)
        remaining = again
        if not remaining:
            break
    return None, failures


def raise_read_failure(loc: Locator, failures: list[ServiceFailure]) -> NoReturn:
    """Not found if every service said it has no such block (or may not show it to this caller);
    corrupt if some service's copy was bad (naming them); otherwise what each service did."""
    if failures and all(_not_for_this_caller(f) for f in failures):
        raise BlockNotFound(f"block {loc.stripped} not found: {describe(failures)}", failures)
    corrupt = corrupt_services(failures)
    if corrupt:
        others = [f for f in failures if f.service not in corrupt]
        raise KeepReadError(
            f"block {loc.stripped} is corrupt on {', '.join(corrupt)} (the bytes did not match its md5; a keepstore "
            "that finds this mid-transfer cuts it off and withdraws the copy); "
            + (f"no other copy could be read ({describe(others)})" if others else "no other service holds a copy"),
            failures, corrupt)
    raise KeepReadError(f"could not read block {loc.stripped}: {describe(failures)}", failures)


def _not_for_this_caller(failure: ServiceFailure) -> bool:
    """The service does not hold the block, or will not say it does to this caller (403)."""
    return isinstance(failure, NotHeld) or (isinstance(failure, ServiceRefused) and failure.denies_access)
