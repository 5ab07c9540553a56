"""The local compute backend: each container's executor is a process on this machine, within the
configured cores and RAM. Executors run in their own session with a pid file, so a restarted
dispatcher finds the ones still running and neither loses nor duplicates them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..reuse import resolve_constraints


class LocalProcesses:
    name = "local"

    def __init__(self, state_dir: Path, env: dict[str, str], cores: int, ram: int):
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.env, self.cores, self.ram = env, cores, ram
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._reserved: dict[str, tuple[int, int]] = {}

    def _needs(self, container: dict[str, Any]) -> tuple[int, int]:
        constraints = resolve_constraints(container.get("runtime_constraints") or {})
        return int(constraints["vcpus"]), int(constraints["ram"])

    def fits(self, container: dict[str, Any]) -> bool:
        cores, ram = self._needs(container)
        used_cores = sum(c for c, _ in self._reserved.values())
        used_ram = sum(r for _, r in self._reserved.values())
        if not self._reserved:  # one container always runs, even if it asks for more than the machine
            return True
        return used_cores + cores <= self.cores and used_ram + ram <= self.ram

    def start(self, container: dict[str, Any]) -> None:
        uuid = container["uuid"]
        log = open(self.state_dir / f"{uuid}.log", "ab")  # noqa: SIM115 - the child owns it
        child = subprocess.Popen([sys.executable, "-m", "archipelago.compute.executor", uuid], env=self.env,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._children[uuid] = child
        self._reserved[uuid] = self._needs(container)
        (self.state_dir / f"{uuid}.pid").write_text(str(child.pid))

    def _pid(self, uuid: str) -> int | None:
        try:
            return int((self.state_dir / f"{uuid}.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def alive(self, uuid: str) -> bool:
        child = self._children.get(uuid)
        if child is not None:
            return child.poll() is None
        pid = self._pid(uuid)  # started by an earlier dispatcher
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes() if Path(f"/proc/{pid}").exists() else b""
        return uuid.encode() in cmdline and b"archipelago.compute.executor" in cmdline

    def adopt(self, container: dict[str, Any]) -> None:
        """A container an earlier dispatcher started: its resources are in use."""
        self._reserved[container["uuid"]] = self._needs(container)

    def stop(self, uuid: str) -> None:
        pid = self._children[uuid].pid if uuid in self._children else self._pid(uuid)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def tracked(self) -> set[str]:
        return set(self._reserved)

    def forget(self, uuid: str) -> None:
        child = self._children.pop(uuid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(1)
        self._reserved.pop(uuid, None)
        (self.state_dir / f"{uuid}.pid").unlink(missing_ok=True)
