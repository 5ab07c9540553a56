"""How a container's command runs on this host. The cluster's config chooses (`containers.runtime`)
and every container's log says which one ran it.

- `bubblewrap` (the default): the command runs in its own mount, PID, IPC and UTS namespaces (and
  network, unless the container asks for API access), on a read-only view of this host's
  filesystem with the mounts bound at their paths. It does not use the container image: a cluster
  without a container engine runs host programs and says so in the log, never pretending to have
  run the image.

The runtime interface is one method, so Docker or Podman are a class each.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import ArchipelagoError
from .mounts import Bind

NOT_BOUND = {"proc", "dev", "sys", "tmp", "run"}  # made fresh inside, never the host's


class RuntimeUnavailable(ArchipelagoError):
    status = 503


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str]
    description: str


class Runtime(Protocol):
    name: str

    def launch(self, command: list[str], cwd: str, env: dict[str, str], binds: list[Bind],
               network: bool, image: str | None) -> Launch: ...


class Bubblewrap:
    name = "bubblewrap"

    def __init__(self, executable: str | None = None):
        found = executable or shutil.which("bwrap")
        if found is None:
            raise RuntimeUnavailable("this cluster runs containers with bubblewrap, which is not installed "
                                     "(apt-get install bubblewrap)")
        self.executable = found

    def launch(self, command: list[str], cwd: str, env: dict[str, str], binds: list[Bind],
               network: bool, image: str | None) -> Launch:
        argv = [self.executable, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--clearenv"]
        if not network:
            argv.append("--unshare-net")
        argv += host_view([b.target for b in binds])
        for bind in binds:
            argv += ["--bind" if bind.writable else "--ro-bind", str(bind.source), bind.target]
        for key, value in env.items():
            argv += ["--setenv", key, value]
        argv += ["--chdir", cwd, "--", *command]
        note = f"; container image {image} not used: this cluster has no container engine" if image else ""
        return Launch(argv, {}, f"bubblewrap {self.executable} on this host's filesystem (read-only){note}")


def host_view(targets: list[str], root: Path = Path("/")) -> list[str]:
    """bwrap arguments binding this host's directories read-only, except along the paths where the
    container's mounts go (those are made as directories, so any mount path can be bound)."""
    args: list[str] = []

    def visit(directory: Path) -> None:
        for entry in sorted(directory.iterdir()):
            path = str(entry)
            if directory == root and entry.name in NOT_BOUND:
                continue
            if path in targets:
                continue  # the mount itself goes here
            if any(t.startswith(path + "/") for t in targets) and entry.is_dir() and not entry.is_symlink():
                args.extend(["--dir", path])
                visit(entry)
            elif entry.is_symlink():
                args.extend(["--symlink", os.readlink(entry), path])
            else:
                args.extend(["--ro-bind", path, path])

    visit(root)
    for target in targets:  # parents of mounts that do not exist on this host
        parts = Path(target).parents
        for parent in reversed(list(parts)[:-1]):
            if not parent.exists():
                args.extend(["--dir", str(parent)])
    return args


def runtime_for(name: str) -> Runtime:
    if name == "bubblewrap":
        return Bubblewrap()
    raise RuntimeUnavailable(f"unknown container runtime {name!r} (this cluster supports: bubblewrap)")
