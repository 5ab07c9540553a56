"""What the commands that talk to a cluster share: their options and the API client."""

from __future__ import annotations

from typing import Annotated

import typer

from ..rpc import ApiRequestError
from ..sdk.client import ApiClient
from .output import BAD_INPUT, fail

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ProfileOpt = Annotated[str | None, typer.Option("--profile", help="Saved profile to use (see `archi login`).")]


def api_client(profile: str | None, as_json: bool) -> ApiClient:
    try:
        return ApiClient.from_env(profile)
    except ApiRequestError as exc:
        fail(exc.message, BAD_INPUT, as_json)


def split_target(target: str) -> tuple[str, str]:
    """`COLLECTION/path/inside` -> (COLLECTION, path/inside)."""
    head, _, rest = target.partition("/")
    return head, rest
