"""A real single-node Slurm of the test's own (Debian's slurm-wlm and munge), on loopback in this
network namespace, so that jobs reach the cluster's API on 127.0.0.1 (machine notes §4)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from archipelago.run.ports import free_port

CONF = """ClusterName=archi
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket.2
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/spool/ctld
SlurmdSpoolDir={root}/spool/d
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=16000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
"""


def unavailable() -> str | None:
    for tool in ("slurmctld", "slurmd", "sbatch", "munged"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install slurm-wlm munge)"
    if not Path("/etc/munge/munge.key").exists():
        return "no munge key (/etc/munge/munge.key)"
    return None


@contextmanager
def slurm(root: Path) -> Iterator[dict[str, str]]:
    """munged, slurmctld and slurmd running; yields the environment (SLURM_CONF) for sbatch & co."""
    for sub in ("munge", "spool/ctld", "spool/d", "run", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.chown(root / "munge", "munge", "munge")
    root.chmod(0o755)
    conf = root / "slurm.conf"
    conf.write_text(CONF.format(root=root, host=socket.gethostname(), cpus=os.cpu_count() or 1,
                                ctld_port=free_port(), d_port=free_port()))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    processes = [subprocess.Popen(["runuser", "-u", "munge", "--", "munged", "--foreground",
                                   f"--socket={root}/munge/munge.socket.2", f"--pid-file={root}/munge/munged.pid",
                                   f"--log-file={root}/munge/munged.log", f"--seed-file={root}/munge/seed"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait(lambda: (root / "munge" / "munge.socket.2").exists(), "munged", root)
        for daemon in ("slurmctld", "slurmd"):
            processes.append(subprocess.Popen([daemon, "-D", "-f", str(conf)], env=env,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait(lambda: subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
              .stdout.strip() == "idle", "the Slurm node", root)
        yield env
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait(ready, what: str, root: Path, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            logs = "\n".join(p.read_text()[-1500:] for p in (root / "log").glob("*.log"))
            raise RuntimeError(f"{what} did not come up within {timeout:.0f} s\n{logs}")
        time.sleep(0.2)
