"""What a compute backend does for the dispatch loop: small enough that Kubernetes or a cloud
batch service is one more file."""

from __future__ import annotations

from typing import Any, Protocol


class ComputeBackend(Protocol):
    name: str

    def fits(self, container: dict[str, Any]) -> bool:
        """Can it start this container now (free cores and RAM, a queue that takes it)?"""
        ...

    def start(self, container: dict[str, Any]) -> None:
        """Start `archi crunch-run <uuid>` for a locked container; returns at once."""
        ...

    def alive(self, uuid: str) -> bool:
        """Is the executor of this container still running (also one started before a restart)?"""
        ...

    def stop(self, uuid: str) -> None:
        """Ask the executor to stop (it cancels the container and saves its logs)."""
        ...

    def tracked(self) -> set[str]:
        """The containers it holds resources for."""
        ...

    def forget(self, uuid: str) -> None:
        """The container is final: release what was held for it."""
        ...

    def adopt(self, container: dict[str, Any]) -> None:
        """A container an earlier dispatcher started (found running after a restart): hold its resources."""
        ...

    def sweep(self, uuid: str) -> None:
        """Its executor died without finishing it: end what the container may have left running."""
        ...
