"""What one step asks of the run, and the one narrow interface it asks through.

A `ContainerJob` (cwl/job.py) knows its command line, mounts and placement; it does not know
about clusters, change streams, plans or other steps. It hands a `StepCall` to the run's
`StepService` and gets back a `StepOutcome` — or, if the run is ending (another step failed),
an outcome that says so at once. Everything else (checking the placement against the plan,
submitting on the right cluster, waiting, cancelling) is the service's (cwl/submission.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .targets import Placement


@dataclass
class StepCall:
    name: str  # cwltool's job name (unique in the run)
    key: str  # the plan's name for this step and record ("extract[2]")
    label: str  # the step's path without records ("extract")
    placement: Placement
    attrs: dict[str, Any]  # the container request, without placement (cluster, owner)
    collections: set[str]  # PDHs it mounts
    given: list[tuple[str, str]] = field(default_factory=list)  # (PDH, path) of the Files it is handed
    status_of: Callable[[int], str] = lambda code: "success" if code == 0 else "permanentFail"


@dataclass
class StepOutcome:
    status: str  # "success", "permanentFail", "temporaryFail"
    cluster: str | None
    request: dict[str, Any] | None = None
    container: dict[str, Any] | None = None
    output_collection: str | None = None  # the output's UUID on the cluster it ran on (one hop to read)
    failure: str | None = None  # what went wrong, said once (the service has reported it)


class StepService(Protocol):
    def run(self, call: StepCall) -> StepOutcome:
        """Submit the step where its placement says, follow it to the end; never raises."""

    def upload(self, location: str) -> str:
        """A local file or directory a tool document names (a default), uploaded once: its keep: location."""

    def failed(self, key: str, why: str) -> None:
        """A step failed after its container ended (its outputs could not be collected): the run ends."""
