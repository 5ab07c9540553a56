"""How a container's command runs on this host. The cluster's config chooses (`containers.runtime`)
and every container's log says which one ran it.

- `bubblewrap` (the default): the command runs in its own mount, PID, IPC and UTS namespaces (and
  network, unless the container asks for API access), on a read-only view of this host's
  filesystem with the mounts bound at their paths. It does not use the container image: a cluster
  without a container engine runs host programs and says so in the log, never pretending to have
  run the image.
- `docker`: the image is loaded from its collection in Keep (a `sha256:<id>.tar` from `docker save`,
  as arv-keepdocker stores it) unless the engine has it, and the command runs in it with the
  mounts bound, RAM and CPU limits, and no network unless the container asks for API access.
- `podman`: the same, through rootful podman (runc, cgroupfs).

A runtime is a small class: Podman would be one more.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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
    uses_images: bool

    def load_image(self, image_dir: Path) -> str:
        """The engine's reference for the image staged (from Keep) in `image_dir`."""
        ...

    def launch(self, command: list[str], cwd: str, env: dict[str, str], binds: list[Bind], network: bool,
               image: str | None, name: str, constraints: dict[str, Any]) -> Launch: ...

    def stop(self, name: str) -> None:
        """Stop what `launch` started under `name`, if killing its process is not enough."""
        ...


class Bubblewrap:
    name = "bubblewrap"
    uses_images = False

    def __init__(self, executable: str | None = None):
        found = executable or shutil.which("bwrap")
        if found is None:
            raise RuntimeUnavailable("this cluster runs containers with bubblewrap, which is not installed "
                                     "(apt-get install bubblewrap)")
        self.executable = found

    def load_image(self, image_dir: Path) -> str:
        raise RuntimeUnavailable("bubblewrap runs no images")

    def stop(self, name: str) -> None:
        pass  # --die-with-parent: killing the process is enough

    def launch(self, command: list[str], cwd: str, env: dict[str, str], binds: list[Bind], network: bool,
               image: str | None, name: str, constraints: dict[str, Any]) -> Launch:
        argv = [self.executable, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--clearenv"]
        if not network:
            argv.append("--unshare-net")
        argv += host_view([b.target for b in binds])
        for bind in sorted(binds, key=lambda b: b.target.count("/")):  # parents before what is mounted in them
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


class Docker:
    name = "docker"
    uses_images = True
    global_args: list[str] = []  # options before the verb, on every command  # noqa: RUF012 - never mutated

    def __init__(self, executable: str | None = None, host: str | None = None):
        found = executable or shutil.which("docker")
        if found is None:
            raise RuntimeUnavailable("this cluster runs containers with Docker, but the docker client is not installed")
        self.executable = found
        self.env = {**os.environ, **({"DOCKER_HOST": host} if host else {})}

    def _docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.executable, *self.global_args, *args], env=self.env, capture_output=True,
                                text=True)
        if check and result.returncode != 0:
            raise RuntimeUnavailable(f"{self.name} {args[0]} failed: {result.stderr.strip()[-500:]}")
        return result

    def load_image(self, image_dir: Path) -> str:
        tars = sorted(image_dir.rglob("sha256:*.tar")) or sorted(image_dir.rglob("*.tar"))
        if not tars:
            raise RuntimeUnavailable(f"the image collection has no image tar (sha256:<id>.tar): {image_dir}")
        image_id = tars[0].name.removesuffix(".tar")
        if self._docker("image", "inspect", image_id, check=False).returncode != 0:
            plain = tars[0].with_name("image.tar")  # podman reads a colon in a path as a transport
            if not plain.exists():
                plain.symlink_to(tars[0].name)
            self._docker("load", "-i", str(plain))
        return image_id

    def stop(self, name: str) -> None:
        self._docker("rm", "-f", name, check=False)

    def launch(self, command: list[str], cwd: str, env: dict[str, str], binds: list[Bind], network: bool,
               image: str | None, name: str, constraints: dict[str, Any]) -> Launch:
        if not image:
            raise RuntimeUnavailable("a Docker cluster needs a container_image")
        argv = [self.executable, *self.global_args, "run", "--rm", "--name", name,
                "--network", "host" if network else "none",
                # lower than the machine's hard limits: runtimes that set rlimits fail otherwise (machine notes)
                "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--workdir", cwd]
        if constraints.get("ram"):
            argv += ["--memory", str(int(constraints["ram"]))]
        if constraints.get("vcpus"):
            argv += ["--cpus", str(constraints["vcpus"])]
        for key, value in env.items():
            argv += ["--env", f"{key}={value}"]
        for bind in sorted(binds, key=lambda b: b.target.count("/")):
            argv += ["--volume", f"{bind.source}:{bind.target}{'' if bind.writable else ':ro'}"]
        argv += [image, *command]
        return Launch(argv, self.env, f"docker ({self.executable}, host {self.env.get('DOCKER_HOST', 'default')}), "
                                      f"image {image}")


class Podman(Docker):
    """Docker's command line, through rootful podman with runc and cgroupfs (this kind of machine's
    crun refuses hybrid cgroups, and conmon's cleanup misses settings given by environment)."""

    name = "podman"
    GLOBAL = ("--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", "runc")

    def __init__(self, executable: str | None = None, storage: str | None = None):
        found = executable or shutil.which("podman")
        if found is None:
            raise RuntimeUnavailable("this cluster runs containers with Podman, but podman is not installed")
        self.executable = found
        self.env = dict(os.environ)
        self.global_args = list(self.GLOBAL)
        if storage:
            self.global_args += ["--root", f"{storage}/root", "--runroot", f"{storage}/run"]

    def launch(self, command: list[str], cwd: str, env: dict[str, str], binds: list[Bind], network: bool,
                image: str | None, name: str, constraints: dict[str, Any]) -> Launch:
        launch = super().launch(command, cwd, env, binds, network, image, name, constraints)
        return Launch(launch.argv, launch.env, launch.description.replace("docker (", "podman (", 1))


def runtime_for(name: str, docker_host: str | None = None, podman_storage: str | None = None) -> Runtime:
    if name == "bubblewrap":
        return Bubblewrap()
    if name == "docker":
        return Docker(host=docker_host)
    if name == "podman":
        return Podman(storage=podman_storage)
    raise RuntimeUnavailable(f"unknown container runtime {name!r} (this cluster supports: bubblewrap, docker, "
                             "podman)")
