"""How every `archi` command fails: errors carrying an HTTP status become an exit code and a message
in one place, here, instead of an `except` in each command.

Exit codes: 0 ok, 1 the operation failed, 2 bad input (the server said 400 or 422, or the input
could not be read).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from ..errors import ArchipelagoError
from ..rpc import ApiRequestError
from .output import BAD_INPUT, FAILED, fail

F = TypeVar("F", bound=Callable[..., Any])


def exit_code(exc: ArchipelagoError) -> int:
    return BAD_INPUT if exc.status in (400, 422) else FAILED


def message(exc: ArchipelagoError) -> str:
    return exc.message if isinstance(exc, ApiRequestError) else str(exc)


def guarded(command: F) -> F:
    """The command, with any ArchipelagoError it raises reported the one way (JSON if --json)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ArchipelagoError as exc:
            fail(message(exc), exit_code(exc), bool(kwargs.get("as_json")))

    return run  # type: ignore[return-value]


def _flags_show_no_type(option: Any, ctx: Any) -> str | None:
    """typer shows a value type after every option, `--json <bool>` included; a flag takes no value."""
    return None if option.is_flag else _display_type(option, ctx)


_display_type = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _flags_show_no_type  # type: ignore[method-assign,assignment]


class Typer(typer.Typer):
    """typer.Typer whose commands report errors through `guarded`."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        register = super().command(*args, **kwargs)

        def decorator(fn: F) -> F:
            register(guarded(fn))
            return fn

        return decorator
