"""RAM and CPU limits for processes that no container engine limits (the bubblewrap runtime): a
cgroup v1 memory and cpu group per container, where this machine lets us make one (as root here).
Where it cannot, the log says the limits are not enforced."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000


class Limits:
    def __init__(self, name: str, ram: int | None, vcpus: float | None, root: Path = ROOT):
        self.groups: list[Path] = []
        self.problem: str | None = None
        try:
            if ram and (root / "memory").is_dir():
                group = self._make(root / "memory" / "archipelago" / name)
                (group / "memory.limit_in_bytes").write_text(str(int(ram)))
                with contextlib.suppress(OSError):  # no swap accounting on some kernels
                    (group / "memory.memsw.limit_in_bytes").write_text(str(int(ram)))
            if vcpus and (root / "cpu").is_dir():
                group = self._make(root / "cpu" / "archipelago" / name)
                (group / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
                (group / "cpu.cfs_quota_us").write_text(str(int(vcpus * CFS_PERIOD_US)))
            if not self.groups:
                self.problem = "no cgroup v1 memory or cpu controller here"
        except OSError as exc:
            self.problem = f"cgroups unavailable ({exc.strerror})"
            self.remove()

    def _make(self, group: Path) -> Path:
        group.mkdir(parents=True, exist_ok=True)
        self.groups.append(group)
        return group

    def describe(self) -> str:
        if self.problem:
            return f"RAM and CPU limits not enforced: {self.problem}"
        return "limits enforced by cgroups: " + ", ".join(str(g.relative_to(ROOT)) for g in self.groups)

    def enter(self) -> None:
        """In the child, before exec: join the groups (and so does everything it starts)."""
        for group in self.groups:
            with contextlib.suppress(OSError):
                (group / "cgroup.procs").write_text(str(os.getpid()))

    def oom_killed(self) -> bool:
        """Did the kernel kill something in the group for want of memory?"""
        for group in self.groups:
            control = group / "memory.oom_control"
            if control.exists():
                fields = dict(line.split() for line in control.read_text().splitlines() if len(line.split()) == 2)
                if int(fields.get("oom_kill", 0)) > 0:
                    return True
        return False

    def remove(self) -> None:
        for group in self.groups:
            with contextlib.suppress(OSError):
                group.rmdir()


def end_processes(name: str, root: Path = ROOT) -> int:
    """Kill what still runs in container `name`'s groups, then remove them; how many processes
    there were. Its executor calls it when the command is over (a sandbox's first process may have
    outlived bubblewrap), the dispatcher's sweep when the executor died first. Every process
    the command started is in them: they join at their start and no one inside may leave. Killed
    by pid, a read of the group at a time: a hostile process that forks and exits over and over
    may outrun it; it then still cannot share its uid with another tenant (sandbox.claim_user
    ends whatever runs as a uid before handing it on)."""
    ended: set[int] = set()
    groups = [group for group in root.glob(f"*/archipelago/{name}") if group.is_dir()]
    for _ in range(100):
        left = {int(pid) for group in groups for pid in _read(group / "cgroup.procs").split()}
        if not left:
            break
        for pid in left - {os.getpid()}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        ended |= left
        time.sleep(0.02)
    for group in groups:
        with contextlib.suppress(OSError):
            group.rmdir()
    return len(ended)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
