"""Keep errors, each carrying the HTTP status keepstore answers with (reference §4.1), and the typed
ways one keep service can fail a client (`ServiceFailure`): retries and the message a caller reads
are decided on these types, never on the text of a message."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ArchipelagoError

# statuses worth asking the same service again for (Arvados' Python SDK retry.py)
RETRYABLE = frozenset({408, 409, 423, 500, 502, 503, 504})
# set by keepstore's (and a gateway's) error answers: which KeepError it was, as `error_kind` names it
ERROR_KIND_HEADER = "X-Keep-Error-Kind"


class KeepError(ArchipelagoError):
    status = 500
    error_kind = ""  # said on the wire (ERROR_KIND_HEADER) when a client must tell this error apart


class InvalidLocator(KeepError):
    status = 400


class HashMismatch(KeepError):
    """The body does not hash to the locator it was PUT under."""

    status = 400


class BlockNotFound(KeepError):
    """No such block here; from the client, `failures` says what each service answered."""

    status = 404

    def __init__(self, message: str = "", failures: list[ServiceFailure] | None = None):
        super().__init__(message)
        self.failures = failures or []


class BlockTooLarge(KeepError):
    status = 413


class CorruptBlock(KeepError):
    """Stored bytes no longer match their hash: reported, quarantined, never served."""

    status = 502
    error_kind = "corrupt"


class VolumeUnavailable(KeepError):
    status = 503


class VolumeFull(KeepError):
    status = 507


class ReadOnly(KeepError):
    status = 405


# ------------------------------------------------------------------ the client's side
@dataclass(frozen=True)
class ServiceFailure:
    """What one keep service (`service`: its URL) did instead of answering a request."""

    service: str
    detail: str

    @property
    def retryable(self) -> bool:
        """Whether asking the same service again, after a pause, may help."""
        return False

    def __str__(self) -> str:
        return f"{self.service}: {self.detail}"


@dataclass(frozen=True)
class NoAnswer(ServiceFailure):
    """No answer: the connection failed or timed out."""

    @property
    def retryable(self) -> bool:
        return True


@dataclass(frozen=True)
class CutShort(NoAnswer):
    """The answer began and was cut short. A keepstore cuts off a block it finds corrupt while
    sending it and withdraws the copy: a service that does this and then no longer has the block
    held a corrupt copy (see `corrupt_services`)."""


@dataclass(frozen=True)
class ServiceRefused(ServiceFailure):
    """The service answered with an error status (not "I do not have it")."""

    status: int = 0

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE

    @property
    def denies_access(self) -> bool:
        """403: the signature or token does not let this caller read the block there."""
        return self.status == 403


@dataclass(frozen=True)
class NotHeld(ServiceFailure):
    """The service does not hold the block (404, or 410: gone)."""

    status: int = 404


@dataclass(frozen=True)
class CorruptCopy(ServiceFailure):
    """The service's copy does not hash to the block's md5: found by the client as it received it,
    or by the service itself (a 502 marked `corrupt`)."""


class KeepWriteError(KeepError):
    """Fewer replicas were stored than asked for; `failures` says what each service did."""

    status = 503

    def __init__(self, message: str, failures: list[ServiceFailure] | None = None):
        super().__init__(message)
        self.failures = failures or []


class KeepReadError(KeepError):
    """No service returned a verified copy of the block; `failures` says what each service did and
    `corrupt` which services hold a bad copy."""

    status = 502

    def __init__(self, message: str, failures: list[ServiceFailure] | None = None, corrupt: list[str] | None = None):
        super().__init__(message)
        self.failures = failures or []
        self.corrupt = corrupt or []


def corrupt_services(failures: list[ServiceFailure]) -> list[str]:
    """The services whose copy was bad, in the order first met: their bytes did not hash right, or
    they cut a transfer off and then no longer had the block (keepstore quarantines a copy it finds
    corrupt while sending it)."""
    found: list[str] = []
    cut: set[str] = set()
    for failure in failures:
        if isinstance(failure, CutShort):
            cut.add(failure.service)
        elif (isinstance(failure, CorruptCopy) or (isinstance(failure, NotHeld) and failure.service in cut)) \
                and failure.service not in found:
            found.append(failure.service)
    return found


def describe(failures: list[ServiceFailure]) -> str:
    return "; ".join(map(str, failures)) or "no keep services configured"


class KeepServiceError(KeepError):
    """One named service failed a call made to it alone (an admin endpoint, a gateway's register or
    PUT); the status is the service's own when it answered, else 502."""

    def __init__(self, message: str, failure: ServiceFailure):
        super().__init__(message, getattr(failure, "status", None) or 502)
        self.failure = failure
