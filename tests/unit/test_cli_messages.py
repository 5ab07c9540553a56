"""What `archi` prints when something is wrong: the message as written (never read as rich markup),
one line however long when piped, exit 2 for bad input, and connection failures in words with
what to do about them."""

from __future__ import annotations

import http.server
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archipelago import __version__
from archipelago.cli.main import app
from archipelago.run.cluster import write_self_signed_certificate

ARCHI = [sys.executable, "-m", "archipelago"]


def archi(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real command, its output piped (not a terminal)."""
    return subprocess.run([*ARCHI, *args], capture_output=True, text=True, timeout=60, cwd=cwd,
                          env={**os.environ, "COLUMNS": "80", **(env or {})})


def test_a_rule_in_brackets_is_printed_as_written(tmp_path: Path) -> None:
    result = archi("cluster", "init", str(tmp_path / "c"), "--cluster-id", "Z_1")
    assert result.returncode == 2
    assert "must be 5 characters from [a-z0-9]" in result.stderr


@pytest.mark.parametrize("name", ["nope[red]", "nope[/x]", "nope[bold]x[/bold]", "trailing\\"])
def test_a_path_that_looks_like_markup_is_named_as_it_is(tmp_path: Path, name: str) -> None:
    result = archi("put", f"./{name}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert name in result.stderr


def test_a_long_message_is_one_line_when_piped(tmp_path: Path) -> None:
    name = "a-directory-name-that-is-much-longer-than-eighty-columns-" * 3
    result = archi("put", f"./{name}", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], result.stderr


def test_version_flag_and_command() -> None:
    for args in (["--version"], ["version"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0 and result.stdout.strip() == f"archipelago {__version__}", result.output


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An HTTPS server with a self-signed certificate, as `archi cluster init` makes one."""
    folder = tmp_path_factory.mktemp("tls")
    write_self_signed_certificate(folder / "tls.crt", folder / "tls.key")
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "tls.crt", folder / "tls.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def _list(host: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return archi("collection", "list", env={"ARCHI_API_HOST": host, "ARCHI_API_TOKEN": "v2/x/y", "HOME": str(tmp_path),
                                            **env})


def test_a_self_signed_certificate_is_named_with_the_way_to_accept_it(tls_server: int, tmp_path: Path) -> None:
    result = _list(f"https://127.0.0.1:{tls_server}", tmp_path)
    assert result.returncode == 1
    assert "(self-signed certificate)" in result.stderr  # the parenthesis closed, the reason whole
    assert "ARCHI_API_HOST_INSECURE=1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_http_against_the_tls_port_says_so_in_words(tls_server: int, tmp_path: Path) -> None:
    result = _list(f"http://127.0.0.1:{tls_server}", tmp_path)
    assert result.returncode == 1
    assert "closed the connection without answering" in result.stderr
    assert f"https://127.0.0.1:{tls_server}" in result.stderr
    assert "RemoteDisconnected" not in result.stderr and "ConnectionResetError" not in result.stderr
    assert "('" not in result.stderr


def test_the_insecure_flag_gets_past_the_certificate(tls_server: int, tmp_path: Path) -> None:
    result = _list(f"https://127.0.0.1:{tls_server}", tmp_path, ARCHI_API_HOST_INSECURE="1")
    assert "certificate" not in result.stderr  # it got an (unhelpful) answer from this stub server instead


def test_skipped_tests_say_why_in_the_summary(tmp_path: Path) -> None:
    """`make test` runs `pytest -q`; the project's pytest options make it list each skip's reason."""
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n\ndef test_needs_a_thing():\n    pytest.skip('no frobnicator on this machine')\n")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
                             str(root / "pyproject.toml"), "--rootdir", str(tmp_path), str(tmp_path / "test_skips.py")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "1 skipped" in result.stdout, result.stdout
    assert "no frobnicator on this machine" in result.stdout


class _Step:
    def __init__(self, name: str) -> None:
        self.name, self.key, self.cluster = name, name, "z1111"
        self.state, self.status, self.seconds, self.started = "Final", "failed: [/x] exit 1", 1.0, 0.0
        self.read_from = {"z2[/]222": 10}


class _MarkupRunner:
    """A runner whose step name, state, failure, plan and table all look like rich markup."""

    def __init__(self, client: object, *, on_change: object = None, on_plan: object = None, **_: object) -> None:
        self.on_change, self.on_plan = on_change, on_plan
        self.steps = {"s": _Step("[/x]count[red]")}
        self.failures = ["step [red]count[/red] failed: [/x] [bold]"]
        self.home = None

    def run(self, workflow: Path, job: Path | None) -> tuple[dict, str]:
        self.on_plan(self)  # type: ignore[operator]
        self.on_change(self.steps)  # type: ignore[operator]
        return {}, "permanentFail"

    def plan_text(self) -> str:
        return "plan: [/] [link=x]step[/link]"

    def moved_text(self) -> str:
        return "moved: [/y]"


def test_a_step_name_or_failure_that_looks_like_markup_is_printed_as_written(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import archipelago.cli.run_cmds as run_cmds
    import archipelago.cwl.runner as cwl_runner

    monkeypatch.setattr(cwl_runner, "Runner", _MarkupRunner)
    monkeypatch.setattr(run_cmds, "api_client", lambda *args: None)
    (tmp_path / "wf.cwl").write_text("{}")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "wf.cwl")])
    assert result.exit_code == 1, result.output  # the run failed; nothing crashed on the markup
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    for text in ("[/x]count[red]", "failed: [/x] exit 1", "z2[/]222", "step [red]count[/red] failed: [/x] [bold]",
                 "plan: [/] [link=x]step[/link]", "moved: [/y]"):
        assert text in result.stderr, (text, result.stderr)


def test_a_followed_requests_state_and_log_lines_are_printed_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    """`archi container run` and `archi run wait` print each state and log line after a dim prefix."""
    from archipelago.cli.output import stamped

    stamped("[/x]stdout", "a line with [red]markup[/] and [/y]")
    assert "[/x]stdout a line with [red]markup[/] and [/y]" in capsys.readouterr().err
