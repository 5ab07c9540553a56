"""A CWL document that does not load or validate is said the way cwltool says it — file:line:column
and the message, one line per error — and `archi run` exits 2 without a traceback, before it asks
any cluster anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BAD = {
    "yaml.cwl": ("cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [echo\ninputs: []\n",
                 "yaml.cwl:4:7: expected ',' or ']', but got ':'"),
    "field.cwl": ("cwlVersion: v1.2\nclass: CommandLineTool\nbaseComand: echo\ninputs: []\noutputs: []\n",
                  "field.cwl:3:1: invalid field 'baseComand', expected one of: 'id', 'label', 'doc', 'inputs', "
                  "'outputs', 'requirements', 'hints', 'cwlVersion', 'intent', 'class', 'baseCommand', "
                  "'arguments', 'stdin', 'stderr', 'stdout', 'successCodes', 'temporaryFailCodes', "
                  "'permanentFailCodes'"),
    "source.cwl": ("cwlVersion: v1.2\nclass: Workflow\ninputs: []\n"
                   "outputs:\n  o: {type: File, outputSource: nope/out}\nsteps: []\n",
                   "source.cwl:5:19: Field 'outputSource' references unknown identifier 'nope/out', tried "
                   "file://{dir}/source.cwl#o/nope/out file://{dir}/source.cwl#nope/out"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_document_is_one_line_and_exit_2(tmp_path: Path, name: str) -> None:
    text, message = BAD[name]
    (tmp_path / name).write_text(text)
    env = {"PATH": "/usr/bin:/bin", "ARCHI_API_HOST": "https://127.0.0.1:9", "ARCHI_API_TOKEN": "v2/x/y",
           "HOME": str(tmp_path)}  # no cluster answers there: none is asked
    result = subprocess.run([sys.executable, "-m", "archipelago", "run", name], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {message.format(dir=tmp_path)}"
    assert result.stdout == ""


def test_a_missing_document_is_named(tmp_path: Path) -> None:
    from archipelago.cwl.loading import DocumentError, load
    from archipelago.cwl.tool import Binding, tool_factory

    with pytest.raises(DocumentError, match=r"^nope\.cwl: no such file$"):
        load(Path("nope.cwl"), tool_factory(Binding("z1111")))


def test_the_runner_tells_its_version() -> None:
    result = subprocess.run([sys.executable, "-c", "from archipelago.cli.run_cmds import standalone; standalone()",
                             "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("archi-cwl-runner 0.")
    assert "cwltool 3." in result.stdout
