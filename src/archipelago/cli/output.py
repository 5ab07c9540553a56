"""How every `archi` command talks: JSON for scripts, rich text and progress bars for people.

Text that comes from elsewhere (an error, a path, a server's message) is never read as rich markup:
`fail` and `note` escape it, and `emit` prints it plain. The consoles soft-wrap: a line piped to a
file or another program is written whole, not broken at 80 columns.

Exit codes: 0 ok, 1 the operation failed, 2 bad input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
from rich.text import Text

OK, FAILED, BAD_INPUT = 0, 1, 2
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = FAILED, as_json: bool = False) -> NoReturn:
    if as_json:
        print(json.dumps({"error": message, "exit_code": code}))
    else:
        errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


def note(message: str, style: str = "") -> None:
    """One line for people on stderr (what is happening, a hint), the message taken literally."""
    errors.print(f"[{style}]{escape(message)}[/]" if style else escape(message), highlight=False, markup=True)


def literal(text: str, style: str = "") -> Text:
    """A table cell or part of a live view taken literally (a step's name, a server's state)."""
    return Text(text, style=style)


def stamped(prefix: str, message: str) -> None:
    """A line for people on stderr after a dim prefix (a time, a log's name), both taken literally."""
    errors.print(f"[dim]{escape(prefix)}[/] {escape(message)}", highlight=False, markup=True)


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
    elif human is not None:
        console.print(human, highlight=False, markup=False, soft_wrap=True)


@contextmanager
def spinner(description: str, enabled: bool = True) -> Iterator[None]:
    """A spinner on stderr while something without a measure of progress happens (a cluster
    starting or stopping); one plain line instead when stderr is not a terminal."""
    if not enabled:
        yield
    elif not sys.stderr.isatty():
        note(description)
        yield
    else:
        with errors.status(escape(description)):
            yield


@contextmanager
def transfer_progress(description: str, total: int, enabled: bool = True) -> Iterator[Any]:
    """A byte-progress bar on stderr; yields advance(n). Silent when not a terminal or disabled."""
    if not enabled or not sys.stderr.isatty():
        yield lambda n: None
        return
    with _byte_bar() as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def _byte_bar() -> Progress:
    return Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=errors, transient=True)


@contextmanager
def work_progress(description: str, enabled: bool = True) -> Iterator[Any]:
    """A byte-progress bar for work whose total is known only once it has begun (a gateway listing
    the objects it registers, a move finding the blocks not yet in place); yields progress(done, total)."""
    if not enabled or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    with _byte_bar() as progress:
        task = progress.add_task(description, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total or None)
