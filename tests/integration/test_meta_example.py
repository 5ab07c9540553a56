"""The README's `archi run examples/meta-analysis/meta-analysis.cwl examples/meta-analysis/job.yml`
can be run as written: the job file ships, one command makes the inputs it names, and the workflow
runs on them (here with cwltool on this machine, which ignores arv:ClusterTarget; `make demo` and
tests/e2e run the same workflow across three clusters)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "meta-analysis"


def test_the_job_file_its_inputs_in_one_command_and_a_run(tmp_path: Path) -> None:
    example = tmp_path / "meta-analysis"
    shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns("cohorts", "__pycache__"))
    job = yaml.safe_load((example / "job.yml").read_text())
    named = [example / entry["path"] for entry in job["cohorts"]]
    assert named and not any(path.exists() for path in named)
    made = subprocess.run([sys.executable, str(example / "generate.py")], capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    assert all(path.stat().st_size > 1_000_000 for path in named)
    assert all(str(path) in made.stdout for path in named)  # it says what it wrote
    assert len(job["clusters"]) == len(job["cohorts"])
    assert (example / job["extract_script"]["path"]).exists() and (example / job["merge_script"]["path"]).exists()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}  # this python3 first
    run = subprocess.run([sys.executable, "-m", "cwltool", "--quiet", "--no-container", "--outdir",
                          str(tmp_path / "out"), str(example / "meta-analysis.cwl"), str(example / "job.yml")],
                         capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    outputs = json.loads(run.stdout)
    assert outputs["plot"]["basename"] == "forest-plot.png" and outputs["plot"]["size"] > 20_000
    table = (tmp_path / "out" / "meta-analysis.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in table] == ["site", "site-z1111", "site-z2222", "site-z3333", "pooled"]
