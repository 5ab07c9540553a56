"""A step waiting for its container request is woken by the change stream; a change that arrives
while the step is looking (between its GET and its sleep) must not be slept through, and a change
to another step's request does not make it look."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from archipelago.cwl.facts import Facts
from archipelago.cwl.plan import Plan
from archipelago.cwl.submission import StepReport, Steps


class CountingCondition(threading.Condition):
    def __init__(self) -> None:
        super().__init__()
        self.sleeps = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.sleeps += 1
        return super().wait(timeout)


def _steps(get_request: Any) -> Steps:
    """Steps at home (z1111) with one step, "step", waiting for its request (answered by `get_request`)."""
    home: Any = SimpleNamespace(config=lambda: {"ClusterID": "z1111"},
                                container_requests=SimpleNamespace(get=get_request))
    steps = Steps(home, Facts(home), Plan("wf.cwl", "z1111", ["z1111"]))
    steps.changes._changed = CountingCondition()
    steps.steps["step"] = StepReport("step", "z1111", "z1111-xvhdp-000000000000001")
    return steps


def test_a_change_streamed_in_while_the_step_looks_is_not_slept_through() -> None:
    steps: Steps
    answers = iter(["Committed", "Final"])

    def get_request(uuid: str) -> dict[str, Any]:
        state = next(answers)
        if state == "Committed":
            steps.changes.wake()  # the stream delivers the Final change just as this answer comes back
        return {"uuid": uuid, "state": state}

    steps = _steps(get_request)
    request, _ = steps._wait("z1111-xvhdp-000000000000001", "step", "step", "z1111")
    assert request is not None and request["state"] == "Final"
    assert steps.changes._changed.sleeps == 0  # looked again at once, instead of sleeping up to a second


def test_a_change_to_another_request_does_not_make_a_step_look(monkeypatch: Any) -> None:
    import archipelago.cwl.submission as submission

    monkeypatch.setattr(submission, "POLL_SECONDS", 0.05)  # the safety net's poll, short here
    steps: Steps
    looks: list[str] = []
    answers = iter(["Committed", "Final"])

    def get_request(uuid: str) -> dict[str, Any]:
        looks.append(uuid)
        state = next(answers)
        if state == "Committed":
            steps.changes.wake("z1111-xvhdp-000000000000other")  # news of some other step
        return {"uuid": uuid, "state": state}

    steps = _steps(get_request)
    request, _ = steps._wait("z1111-xvhdp-000000000000001", "step", "step", "z1111")
    assert request is not None and request["state"] == "Final"
    assert steps.changes._changed.sleeps >= 1 and len(looks) == 2  # slept through it; looked again on its poll
