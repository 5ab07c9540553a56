"""Every container request of one `archi run` carries the run's id and the step's name, on whichever
cluster it goes to: the web UI finds a run's steps across the federation by these properties."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from archipelago.cwl.plan import Plan
from archipelago.cwl.runner import Runner
from archipelago.cwl.tags import RUN, RUN_ID_ENV, STEP, WORKFLOW


def fake_home(sent: list[tuple[dict[str, Any] | None, dict[str, Any]]]) -> Any:
    def request(method: str, path: str, params: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
        sent.append((params, body["container_request"]))
        return {"uuid": f"z1111-xvhdp-{len(sent):015d}", "state": "Committed"}

    return SimpleNamespace(config=lambda: {"ClusterID": "z1111", "RemoteClusters": {"z2222": {}}}, request=request)


def test_each_step_request_names_its_run_and_step_wherever_it_goes() -> None:
    sent: list[tuple[dict[str, Any] | None, dict[str, Any]]] = []
    runner = Runner(fake_home(sent))
    runner.workflow_name = "wf.cwl"
    steps = runner.steps_service(Plan("wf.cwl", "z1111", ["z1111", "z2222"]))  # what submits a run's steps
    steps.changes._followed.update({"z1111", "z2222"})  # no change streams in this test
    steps.submit({"name": "a", "properties": {"mine": "kept"}}, "z1111", "extract")
    steps.submit({"name": "b"}, "z2222", "extract_2")
    assert runner.run_id.startswith("z1111-run-")
    (home_params, home_attrs), (remote_params, remote_attrs) = sent
    assert home_params is None and remote_params == {"cluster_id": "z2222"}
    assert home_attrs["properties"] == {"mine": "kept", RUN: runner.run_id, STEP: "extract", WORKFLOW: "wf.cwl"}
    assert remote_attrs["properties"] == {RUN: runner.run_id, STEP: "extract_2", WORKFLOW: "wf.cwl"}


def test_a_submitted_runner_uses_the_run_id_it_is_given(monkeypatch: Any) -> None:
    monkeypatch.setenv(RUN_ID_ENV, "z1111-run-0123456789abcdef")
    assert Runner(fake_home([])).run_id == "z1111-run-0123456789abcdef"
    monkeypatch.delenv(RUN_ID_ENV)
    assert Runner(fake_home([])).run_id != Runner(fake_home([])).run_id
