"""How every `archi` command fails: errors carrying an HTTP status become an exit code and a message
in one place, here, instead of an `except` in each command.

Exit codes: 0 ok, 1 the operation failed, 2 bad input (the server said 400 or 422, or the input
could not be read).

Help text is taken literally too: typer reads it as rich markup, where `PATH=COLLECTION[/file]`
crashed `--help` and `[a-z0-9]` vanished; every command and group made by `Typer` here escapes its
help and its parameters' help once, when typer builds it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.markup import escape

from ..errors import ArchipelagoError
from ..rpc import ApiRequestError, Unreachable
from .output import BAD_INPUT, FAILED, fail

F = TypeVar("F", bound=Callable[..., Any])


def exit_code(exc: ArchipelagoError) -> int:
    return BAD_INPUT if exc.status in (400, 422) else FAILED


def message(exc: ArchipelagoError) -> str:
    text = exc.message if isinstance(exc, ApiRequestError) else str(exc)
    hint = _hint(exc) if isinstance(exc, Unreachable) else None
    return f"{text}. {hint}" if hint else text


def _hint(exc: Unreachable) -> str | None:
    """What to do about a connection that failed for a reason a newcomer meets on the first day."""
    if exc.kind == "certificate":
        return ("A cluster made by `archi cluster init` has a self-signed certificate: set "
                "ARCHI_API_HOST_INSECURE=1 (or `archi login --insecure`) to accept it")
    if exc.kind == "closed" and exc.url.startswith("http://"):
        return f"The API serves HTTPS: use https://{exc.host}"
    return None


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


def _literal_help(command: Any) -> None:
    for attr in ("help", "short_help", "epilog"):
        if getattr(command, attr, None):
            setattr(command, attr, escape(getattr(command, attr)))
    for param in command.params:
        if getattr(param, "help", None):
            param.help = escape(param.help)


class LiteralCommand(typer.core.TyperCommand):
    """A command whose help (and its parameters' help) is shown as written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _literal_help(self)


class LiteralGroup(typer.core.TyperGroup):
    """A command group whose help (and its options' help) is shown as written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _literal_help(self)


class Typer(typer.Typer):
    """typer.Typer whose commands report errors through `guarded` and show their help as written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("cls", LiteralGroup)
        super().__init__(*args, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        kwargs.setdefault("cls", LiteralCommand)
        register = super().command(*args, **kwargs)

        def decorator(fn: F) -> F:
            register(guarded(fn))
            return fn

        return decorator
