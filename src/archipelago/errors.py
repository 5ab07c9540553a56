"""One exception tree for the whole project: every error a user can meet carries the HTTP status
it is answered with. The API and keepstore render it as Arvados' `{"errors": [...]}` body; the CLI
maps the status to an exit code (cli/errors.py).

    ArchipelagoError (500)
    ├── BadRequest (400) ── formats: LocatorError, ManifestError, TokenFormatError, SignatureError …
    ├── Unauthorized (401)
    ├── Forbidden (403)
    ├── NotFound (404)
    ├── Unprocessable (422)
    ├── BadGateway (502): a peer cluster or a store answered wrongly
    ├── Unavailable (503): a peer or a service cannot be reached now
    └── KeepError (keep/errors.py: the block store's own, each with its keepstore status)
"""

from __future__ import annotations


class ArchipelagoError(Exception):
    """An error a client can act on, with the HTTP status the services answer with."""

    status = 500

    def __init__(self, message: str = "", status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class BadRequest(ArchipelagoError):
    status = 400


class Unauthorized(ArchipelagoError):
    status = 401


class Forbidden(ArchipelagoError):
    status = 403


class NotFound(ArchipelagoError):
    status = 404


class PayloadTooLarge(ArchipelagoError):
    status = 413


class UnsupportedMediaType(ArchipelagoError):
    status = 415


class Unprocessable(ArchipelagoError):
    status = 422


class BadGateway(ArchipelagoError):
    status = 502


class Unavailable(ArchipelagoError):
    status = 503
