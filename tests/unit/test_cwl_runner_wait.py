"""A step waiting for its container request is woken by the change stream; a change that arrives
while the step is looking (between its GET and its sleep) must not be slept through."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from archipelago.cwl.runner import Runner, StepReport


class CountingCondition(threading.Condition):
    def __init__(self) -> None:
        super().__init__()
        self.sleeps = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.sleeps += 1
        return super().wait(timeout)


def test_a_change_streamed_in_while_the_step_looks_is_not_slept_through() -> None:
    runner: Runner
    answers = iter(["Committed", "Final"])

    def get_request(uuid: str) -> dict[str, Any]:
        state = next(answers)
        if state == "Committed":
            runner.wake()  # the stream delivers the Final change just as this answer comes back
        return {"uuid": uuid, "state": state}

    home = SimpleNamespace(config=lambda: {"ClusterID": "z1111"},
                           container_requests=SimpleNamespace(get=get_request))
    runner = Runner(home)  # type: ignore[arg-type]
    runner._changed = CountingCondition()
    runner.steps["step"] = StepReport("step", "z1111", "z1111-xvhdp-000000000000001")
    assert runner.wait("z1111-xvhdp-000000000000001", "step", "z1111")["state"] == "Final"
    assert runner._changed.sleeps == 0  # looked again at once, instead of sleeping up to a second
