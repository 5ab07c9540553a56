"""The local compute backend: each container's executor is a process on this machine, within the
configured cores and RAM. Executors run in their own session with a pid file, so a restarted
dispatcher finds the ones still running and neither loses nor duplicates them.

One executor is kept warm (started, its imports done, waiting for a UUID on stdin): a container
starts without waiting for a Python interpreter to start. It exits when the dispatcher does (its
stdin closes)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from ...files import exclusive_directory
from ..reuse import resolve_constraints


class LocalProcesses:
    name = "local"

    def __init__(self, state_dir: Path, env: dict[str, str], cores: int, ram: int):
        self.state_dir = exclusive_directory(state_dir)  # pid files it signals: nobody else's to plant
        self.env, self.cores, self.ram = env, cores, ram
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._reserved: dict[str, tuple[int, int]] = {}
        self._warm: subprocess.Popen[bytes] | None = None

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
        child = self._handover(uuid) or self._spawn(uuid)
        self._children[uuid] = child
        self._reserved[uuid] = self._needs(container)
        (self.state_dir / f"{uuid}.pid").write_text(str(child.pid))
        self._warm = self._spawn("--warm")  # the next container's

    def _spawn(self, argument: str) -> subprocess.Popen[bytes]:
        """An executor for container `argument`, or a warm one (`--warm`) that waits for its UUID."""
        log = open(self.state_dir / f"{argument.lstrip('-')}.log", "ab")  # noqa: SIM115 - the child owns it
        child = subprocess.Popen([sys.executable, "-m", "archipelago.executor", argument], env=self.env,
                                 stdin=subprocess.PIPE if argument == "--warm" else subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                 umask=0o022)  # not the cluster's 077: it makes files for the sandbox user
        log.close()
        return child

    def _handover(self, uuid: str) -> subprocess.Popen[bytes] | None:
        """The warm executor, now running `uuid` (None if there is none ready)."""
        warm, self._warm = self._warm, None
        if warm is None or warm.poll() is not None or warm.stdin is None:
            return None
        try:
            warm.stdin.write(f"{uuid}\n".encode())
            warm.stdin.close()
        except OSError:
            return None
        with contextlib.suppress(OSError):  # it got ready at a low priority; the rest of its start is urgent
            os.setpriority(os.PRIO_PROCESS, warm.pid, 0)
        with contextlib.suppress(OSError):  # its output continues in the container's own log
            os.replace(self.state_dir / "warm.log", self.state_dir / f"{uuid}.log")
        return warm

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
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            cwd = os.readlink(f"/proc/{pid}/cwd")  # its work directory is named for its container
        except OSError:
            return False
        return b"archipelago.executor" in cmdline and (uuid.encode() in cmdline or uuid in cwd)

    def sweep(self, uuid: str) -> None:
        """After its executor died without finishing it: what the container still runs is ended
        (by the executor program, which knows its cgroups: `--sweep`)."""
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            subprocess.run([sys.executable, "-m", "archipelago.executor", "--sweep", uuid], env=self.env,
                           capture_output=True, timeout=30)

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
