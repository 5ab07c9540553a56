"""`archi run`: CWL workflows whose steps run as containers where their ClusterTarget says, on a
two-cluster federation on loopback; results saved at home."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from archipelago.cwl.runner import RunError, Runner
from archipelago.sdk import Collection
from tests.support.clusters import new_user, running_federation

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")]
WORKFLOWS = Path(__file__).parent / "cwl"


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    with running_federation(tmp_path_factory.mktemp("cwl"), 2) as federation:
        yield federation


def job(tmp_path: Path, lines: int, where: str | None = None) -> Path:
    (tmp_path / "lines.txt").write_text("".join(f"line {n}\n" for n in range(lines)))
    text = "infile:\n  class: File\n  path: lines.txt\n" + (f"where: {where}\n" if where else "")
    (tmp_path / "job.yml").write_text(text)
    return tmp_path / "job.yml"


def step_name(job_name: str) -> str:
    """cwltool makes job names unique within a process (step1, step1_2, ...)."""
    base, _, suffix = job_name.rpartition("_")
    return base if suffix.isdigit() and base else job_name


def read(client, output: dict) -> bytes:
    pdh, _, name = output["location"][len("keep:"):].partition("/")
    return Collection(client, pdh).read(name)


def test_a_workflow_without_hints_runs_at_home_and_saves_its_output_there(federation, tmp_path):
    alice = new_user(federation["z1111"], "alice")
    runner = Runner(alice)
    outputs, status = runner.run(WORKFLOWS / "wf.cwl", job(tmp_path, 3))
    assert status == "success" and read(alice, outputs["result"]) == b"3\n"
    assert {s.cluster for s in runner.steps.values()} == {"z1111"}
    record = alice.collections.get(outputs["_archi_output_collection"])
    assert record["uuid"].startswith("z1111-") and record["owner_uuid"] == alice.users.current()["uuid"]


def test_a_step_runs_where_its_cluster_target_expression_says_and_results_come_home(federation, tmp_path):
    alice = new_user(federation["z1111"], "alice")
    runner = Runner(alice)
    outputs, status = runner.run(WORKFLOWS / "wf-cluster-target.cwl", job(tmp_path, 5, where="z2222"))
    assert status == "success" and read(alice, outputs["result"]) == b"5\n"
    clusters = {step_name(name): s.cluster for name, s in runner.steps.items()}
    assert clusters == {"step1": "z2222", "step2": "z1111"}
    assert next(s for n, s in runner.steps.items() if step_name(n) == "step1").request_uuid.startswith("z2222-xvhdp-")
    assert outputs["result"]["location"].startswith("keep:")
    # the final collection is at home and stands alone (its blocks were copied home)
    assert alice.collections.get(outputs["_archi_output_collection"])["uuid"].startswith("z1111-")


def test_a_rerun_reuses_the_finished_steps(federation, tmp_path):
    alice = new_user(federation["z1111"], "alice")
    first = Runner(alice)
    first.run(WORKFLOWS / "wf-cluster-target.cwl", job(tmp_path, 7, where="z2222"))
    again = Runner(alice)
    outputs, status = again.run(WORKFLOWS / "wf-cluster-target.cwl", job(tmp_path, 7, where="z2222"))
    assert status == "success" and read(alice, outputs["result"]) == b"7\n"
    # the same local input is not uploaded again: the collection of the first run is used
    assert again.inputs_pdh == first.inputs_pdh
    assert len(alice.collections.list([["name", "=", "inputs for archi run"]])["items"]) == 1
    earlier_steps = {step_name(n): s for n, s in first.steps.items()}
    for name, step in again.steps.items():
        request = alice.container_requests.get(step.request_uuid)
        earlier = alice.container_requests.get(earlier_steps[step_name(name)].request_uuid)
        assert request["container_uuid"] == earlier["container_uuid"]  # nothing ran twice


def test_an_unknown_cluster_is_an_error_before_anything_is_submitted(federation, tmp_path):
    alice = new_user(federation["z1111"], "alice")
    with pytest.raises(RunError) as info:
        Runner(alice).run(WORKFLOWS / "wf-unknown-cluster.cwl", job(tmp_path, 2))
    assert "step1: unknown or invalid cluster id 'zzzzz'" in str(info.value)
    assert alice.container_requests.list()["items"] == []


def test_a_cluster_that_is_down_is_refused_up_front_and_one_lost_during_a_run_ends_it(tmp_path):
    """Down before the run: the plan says so, for the record that would run there, and nothing is
    submitted anywhere. Lost while a step runs there: the run ends at once (non-zero), its step at
    home cancelled, instead of waiting for it."""
    import importlib.util
    import json
    import threading
    import time

    from archipelago.cwl.runner import Refused
    from archipelago.run.processes import ClusterProcess

    example = Path(__file__).parents[2] / "examples" / "meta-analysis"
    spec = importlib.util.spec_from_file_location("generate", example / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    cohorts = []
    for n, site in enumerate(("a", "b"), start=1):
        rows = generate.cohort(site, n, 400)
        path = tmp_path / f"{site}.csv"
        path.write_text(",".join(rows[0]) + "\n" + "".join(",".join(map(str, r.values())) + "\n" for r in rows))
        cohorts.append({"class": "File", "path": str(path)})
    job_path = tmp_path / "job.json"
    job_path.write_text(json.dumps({"cohorts": cohorts, "clusters": ["z1111", "z2222"], "min_age": 40,
                                    "extract_script": {"class": "File", "path": str(example / "extract.py")},
                                    "merge_script": {"class": "File", "path": str(example / "merge.py")}}))
    (tmp_path / "sleep.json").write_text(json.dumps({"clusters": ["z1111", "z2222"]}))
    with running_federation(tmp_path / "fed", 2) as federation:
        alice = new_user(federation["z1111"], "alice")
        down = federation["processes"]["z2222"]
        down.stop()
        with pytest.raises(Refused) as refused:
            Runner(alice).run(example / "meta-analysis.cwl", job_path)
        assert "extract[1]: cluster z2222 cannot be reached" in str(refused.value)
        assert alice.container_requests.list()["items"] == []  # nothing submitted
        with ClusterProcess(down.directory) as back:
            again = Runner(alice)
            _, status = again.run(example / "meta-analysis.cwl", job_path)
            assert status == "success", again.failures

            def lose_z2222(steps: dict) -> None:  # as soon as its step is submitted there
                if any(s.cluster == "z2222" for s in steps.values()) and not stopping.is_set():
                    stopping.set()
                    threading.Thread(target=back.stop).start()

            stopping = threading.Event()
            lost = Runner(alice, reuse=False, on_change=lose_z2222)
            started = time.monotonic()
            _, status = lost.run(WORKFLOWS / "sleep-everywhere.cwl", tmp_path / "sleep.json")
            assert status != "success"
            assert time.monotonic() - started < 120  # the sleeps last 600 s: the run did not wait for them
            assert any("z2222 cannot be reached" in f for f in lost.failures), lost.failures
            home = next(s for s in lost.steps.values() if s.cluster == "z1111")
            assert alice.container_requests.get(home.request_uuid)["priority"] == 0  # cancelled


def test_the_cli_reports_where_steps_ran_and_the_bytes_that_moved(federation, tmp_path):
    import json
    import os
    import subprocess
    import sys

    alice = new_user(federation["z1111"], "alice")
    job(tmp_path, 4, where="z2222")
    env = {**os.environ, "ARCHI_API_HOST": alice.base, "ARCHI_API_TOKEN": alice.token, "ARCHI_API_HOST_INSECURE": "1"}
    workflow = str(WORKFLOWS / "wf-cluster-target.cwl")
    command = [sys.executable, "-m", "archipelago", "run", "--json", workflow, "job.yml"]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["status"] == "success" and report["steps_per_cluster"] == {"z1111": 1, "z2222": 1}
    # step1 on z2222 read the input (held at z1111); step2 at home read step1's output (held at z2222)
    assert set(report["bytes_moved"]) == {"z1111→z2222", "z2222→z1111"}
    assert report["outputs"]["result"]["location"].startswith("keep:")


def test_a_submitted_run_goes_on_without_the_user_and_is_followed_by_its_uuid(federation, tmp_path):
    import json
    import os
    import subprocess
    import sys

    alice = new_user(federation["z1111"], "alice")
    job(tmp_path, 6, where="z2222")
    env = {**os.environ, "ARCHI_API_HOST": alice.base, "ARCHI_API_TOKEN": alice.token, "ARCHI_API_HOST_INSECURE": "1"}

    def archi(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "archipelago", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=180)

    submitted = archi("run", "--submit", "--no-wait", "--json", str(WORKFLOWS / "wf-cluster-target.cwl"), "job.yml")
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    run_uuid = json.loads(submitted.stdout)["run"]
    assert run_uuid.startswith("z1111-xvhdp-")
    waited = archi("run", "wait", run_uuid, "--json")
    assert waited.returncode == 0, waited.stderr[-2000:] + archi("run", "logs", run_uuid).stdout[-3000:]
    status = json.loads(waited.stdout)
    assert status["state"] == "Final" and status["report"]["status"] == "success"
    assert read(alice, status["report"]["outputs"]["result"]) == b"6\n"
    # the steps are the runner's children: the one at home is listed with the run
    assert [s["state"] for s in status["steps_here"]] == ["Final"]
    assert status["report"]["steps_per_cluster"] == {"z1111": 1, "z2222": 1}


def test_prestage_copies_a_remote_steps_inputs_ahead_so_it_reads_them_locally(federation, tmp_path):
    alice = new_user(federation["z1111"], "alice")
    runner = Runner(alice, prestage=True)
    outputs, status = runner.run(WORKFLOWS / "wf-cluster-target.cwl", job(tmp_path, 9, where="z2222"))
    assert status == "success" and read(alice, outputs["result"]) == b"9\n"
    assert [(cluster, sent > 0) for (cluster, _), sent in runner.prestaged.items()] == [("z2222", True)]
    remote_step = next(s for s in runner.steps.values() if s.cluster == "z2222")
    assert set(remote_step.read_from) == {"z2222"}  # its input was already there


def test_initial_workdir_literals_and_a_tools_default_file(federation, tmp_path):
    alice = new_user(federation["z1111"], "alice")
    (tmp_path / "in.txt").write_text("input line\n")
    (tmp_path / "job.yml").write_text("name: alice\ninfile: {class: File, path: in.txt}\n")
    outputs, status = Runner(alice).run(WORKFLOWS / "initial-workdir.cwl", tmp_path / "job.yml")
    assert status == "success"
    assert read(alice, outputs["all"]) == b"hello from alice\ninput line\na note from the tool document\n"


def test_names_that_need_quoting_and_directory_literals_reach_the_step(federation, tmp_path):
    """'#', spaces and ':' in names survive as keep: URIs; a Directory literal's files are uploaded
    where its listing says, and the step reads them through its mount."""
    alice = new_user(federation["z1111"], "alice")
    (tmp_path / "item #1: a.txt").write_text("quoted\n")
    (tmp_path / "job.yml").write_text("infile: {class: File, location: 'item%20%231:%20a.txt'}\n")
    outputs, status = Runner(alice).run(WORKFLOWS / "wf.cwl", tmp_path / "job.yml")
    assert status == "success" and read(alice, outputs["result"]) == b"1\n"
    (tmp_path / "dir.yml").write_text(
        "dir1:\n  class: Directory\n  basename: cwl\n  listing:\n"
        "    - {class: Directory, basename: 'sub dir', listing: [{class: File, basename: 'a#1.txt', "
        "contents: 'a literal, two levels down'}]}\n")
    outputs, status = Runner(alice).run(WORKFLOWS / "cat-nested.cwl", tmp_path / "dir.yml")
    assert status == "success" and read(alice, outputs["out"]) == b"a literal, two levels down"


def test_empty_directories_a_tool_makes_are_outputs(federation, tmp_path):
    alice = new_user(federation["z1111"], "alice")
    (tmp_path / "empty.yml").write_text("{}\n")
    outputs, status = Runner(alice).run(WORKFLOWS / "empty-dirs.cwl", tmp_path / "empty.yml")
    assert status == "success"
    assert [d["basename"] for d in outputs["directories"]] == ["a_dir", "b_dir"]
    pdh = outputs["directories"][0]["location"][len("keep:"):].split("/")[0]
    assert Collection(alice, pdh).directories() == ["a_dir", "b_dir", "b_dir/inner"]


def test_directory_outputs_are_gathered_into_the_final_collection_at_home(federation, tmp_path):
    alice = new_user(federation["z1111"], "alice")
    (tmp_path / "empty.yml").write_text("{}\n")
    outputs, status = Runner(alice).run(WORKFLOWS / "dir-output.cwl", tmp_path / "empty.yml")
    assert status == "success"
    final = alice.collections.get(outputs["_archi_output_collection"])
    assert outputs["results"]["location"] == f"keep:{final['portable_data_hash']}/results"
    assert sorted(path for path, _ in Collection(alice, final["uuid"]).files()) == [
        "note.txt", "results/deep/y.txt", "results/x.txt"]  # the step's scratch stays behind
    assert Collection(alice, final["uuid"]).read("results/deep/y.txt") == b"y\n"
