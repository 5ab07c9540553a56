"""`--help` of every `archi` command and subcommand, found by walking the command tree (a command
added later is covered without touching this file): none crashes, and text in brackets in the help
(`PATH=COLLECTION[/file]`, `[a-z0-9]`) is shown as written, not eaten as rich markup."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.rich_utils
from rich.console import Console
from typer.testing import CliRunner

from archipelago.cli.main import app

BRACKETED = re.compile(r"\[[^\]\n]*\]")


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command under `command` (typer's click-like commands; a group has `commands`)."""
    yield path, command
    if getattr(command, "commands", None):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


ROOT = typer.main.get_command(app)
COMMANDS = list(walk(ROOT))


def written(text: str | None) -> str:
    """A help string as its author wrote it (the CLI escapes it for rich once, when it is built)."""
    return (text or "").replace("\\[", "[")


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Console]:
    """typer renders help on a console of its own: record what it prints, wide enough not to wrap."""
    consoles: list[Console] = []

    def console(stderr: bool = False) -> Console:
        made = Console(record=True, width=400, file=io.StringIO(), force_terminal=False, stderr=stderr)
        consoles.append(made)
        return made

    monkeypatch.setattr(typer.rich_utils, "_get_rich_console", console)
    return consoles


def test_the_walk_finds_every_group_and_command() -> None:
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "cluster", "cluster up", "container run", "keep put", "manifest pdh", "run", "version"} <= paths
    assert len(paths) > 30


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=lambda p: " ".join(p) or "archi")
def test_help_shows_every_help_text_as_written(path: tuple[str, ...], recorded: list[Console]) -> None:
    command = dict(COMMANDS)[path]
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="archi")
    assert result.exit_code == 0, f"archi {' '.join(path)} --help: {result.exception!r}\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit)
    shown = flat("".join(c.export_text() for c in recorded) + result.output)
    texts = [written(command.help), *(written(getattr(p, "help", None)) for p in command.params)]
    for text in texts:
        for bracketed in BRACKETED.findall(text):
            assert flat(bracketed) in shown, f"archi {' '.join(path)} --help lost {bracketed!r}"
    if command.help:
        assert flat(written(command.help).split("\n\n")[0])[:60] in shown


def test_the_help_that_crashed_and_the_text_that_vanished(recorded: list[Console]) -> None:
    result = CliRunner().invoke(app, ["container", "run", "--help"], prog_name="archi")
    assert result.exit_code == 0 and "PATH=COLLECTION[/file]" in flat("".join(c.export_text() for c in recorded))


def test_the_standalone_cwl_runner_help_works() -> None:
    runner = Path(sys.executable).parent / "archi-cwl-runner"
    if not runner.exists():
        pytest.skip("archi-cwl-runner is not installed in this environment")
    result = subprocess.run([str(runner), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "workflow" in result.stdout.lower()
