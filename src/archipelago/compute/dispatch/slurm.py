"""The Slurm compute backend: each container's executor is an `sbatch` job named after the
container, its runtime constraints mapped to Slurm options (as crunch-dispatch-slurm does:
--mem in MiB including the keep cache and a reserve, --cpus-per-task, --time from max_run_time),
watched with `squeue` and cancelled with `scancel` (SIGTERM: the executor cancels the container
and saves its logs). Slurm queues what does not fit, so everything is handed over at once."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

from ...errors import ArchipelagoError
from ...files import exclusive_directory
from ..reuse import resolve_constraints

RESERVE_EXTRA_RAM = 550 << 20  # Arvados' ReserveExtraRAM: the executor's own needs


class SlurmError(ArchipelagoError):
    status = 503


def sbatch_options(container: dict[str, Any], partition: str | None = None) -> list[str]:
    constraints = resolve_constraints(container.get("runtime_constraints") or {})
    mem_mib = math.ceil((int(constraints["ram"]) + int(constraints.get("keep_cache_ram") or 0)
                         + RESERVE_EXTRA_RAM) / (1 << 20))
    options = [f"--job-name={container['uuid']}", f"--mem={mem_mib}", f"--cpus-per-task={int(constraints['vcpus'])}",
               "--no-requeue"]
    max_run_time = (container.get("scheduling_parameters") or {}).get("max_run_time")
    if max_run_time:
        options.append(f"--time={math.ceil(int(max_run_time) / 60)}")
    partitions = (container.get("scheduling_parameters") or {}).get("partitions") or ([partition] if partition else [])
    if partitions:
        options.append(f"--partition={','.join(partitions)}")
    return options


class SlurmJobs:
    name = "slurm"

    def __init__(self, state_dir: Path, env: dict[str, str], partition: str | None = None):
        self.state_dir, self.env, self.partition = exclusive_directory(state_dir), env, partition
        self._tracked: set[str] = set()

    def _run(self, *argv: str) -> str:
        result = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise SlurmError(f"{argv[0]} failed: {result.stderr.strip()[-300:]}")
        return result.stdout

    def fits(self, container: dict[str, Any]) -> bool:
        return True

    def start(self, container: dict[str, Any]) -> None:
        uuid = container["uuid"]
        self._run("sbatch", *sbatch_options(container, self.partition), f"--output={self.state_dir / uuid}.log",
                  f"--chdir={self.state_dir}", "--export=ALL",
                  # exec: the executor is the job itself, so scancel's SIGTERM reaches it and the job
                  # lasts until it has saved the logs
                  f"--wrap=exec {sys.executable} -m archipelago.executor {uuid}")
        self._tracked.add(uuid)

    def alive(self, uuid: str) -> bool:
        return bool(self._run("squeue", "--noheader", f"--name={uuid}", "--format=%i").strip())

    def adopt(self, container: dict[str, Any]) -> None:
        self._tracked.add(container["uuid"])

    def stop(self, uuid: str) -> None:
        self._run("scancel", "--signal=TERM", "--full", f"--name={uuid}")

    def sweep(self, uuid: str) -> None:
        pass  # the job is over: Slurm ends every process of it

    def tracked(self) -> set[str]:
        return set(self._tracked)

    def forget(self, uuid: str) -> None:
        self._tracked.discard(uuid)
