"""CPU time of processes, for the benchmarks that print it beside their rates (imported by the
scripts beside it: `python benchmarks/x.py` puts this folder on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (all its threads); this one if no pid."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
