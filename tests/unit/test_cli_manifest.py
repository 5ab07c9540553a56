import json

from typer.testing import CliRunner

from archipelago.cli.main import app

runner = CliRunner()
EMPTY = "d41d8cd98f00b204e9800998ecf8427e+0"


def test_pdh_from_stdin():
    result = runner.invoke(app, ["manifest", "pdh", "-"], input=f". {EMPTY} 0:0:ocelot\n")
    assert result.exit_code == 0
    assert result.stdout.strip() == "8ea82759a04e5ce160fb3b0c7f771b1d+48"


def test_normalize_and_validate_files(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text(f". {EMPTY} 0:0:b 0:0:a\n")
    assert runner.invoke(app, ["manifest", "normalize", str(path)]).stdout == f". {EMPTY} 0:0:a 0:0:b\n"
    result = runner.invoke(app, ["manifest", "validate", str(path), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == {"valid": True, "streams": 1, "files": 2}


def test_invalid_manifest_exits_2_naming_line_and_token():
    result = runner.invoke(app, ["manifest", "validate", "-", "--json"], input=f". {EMPTY} 0:0:a\n./x  0:0:b\n")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert "line 2" in error and "token 2" in error


def test_missing_file_exits_2(tmp_path):
    assert runner.invoke(app, ["manifest", "pdh", str(tmp_path / "nope")]).exit_code == 2
