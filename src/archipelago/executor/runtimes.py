"""How a container's command runs on this host. The cluster's config chooses (`containers.runtime`)
and every container's log says which one ran it. Every runtime applies the sandbox (sandbox.py):
the command runs as the container's own unprivileged uid, with no capabilities and no_new_privs.

- `bubblewrap` (the default): the command runs in its own mount, PID, IPC, UTS and cgroup
  namespaces (and network, unless the container asks for API access), on a minimal read-only view
  of this host (system programs and libraries, the site's tools) with its mounts bound at their
  paths. It does not use the container image: a cluster without a container engine runs host
  programs and says so in the log, never pretending to have run the image.
- `docker`: the image is loaded from its collection in Keep (a `sha256:<id>.tar` from `docker save`,
  as arv-keepdocker stores it) unless the engine has it, and the command runs in it with the
  mounts bound, RAM and CPU limits, every capability dropped, and no network unless the container
  asks for API access.
- `podman`: the same, through rootful podman (runc, cgroupfs).

A runtime is a small class: Singularity would be one more.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import ArchipelagoError
from .mounts import Bind
from .sandbox import SandboxUser, drop_privileges, parent_directories, view_arguments, visible_host_paths


class RuntimeUnavailable(ArchipelagoError):
    status = 503


@dataclass
class Job:
    """One container's command, as the executor hands it to a runtime."""

    command: list[str]
    cwd: str
    env: dict[str, str]
    binds: list[Bind]
    network: bool
    image: str | None
    name: str
    user: SandboxUser
    constraints: dict[str, Any] = field(default_factory=dict)
    host_path: list[str] = field(default_factory=list)  # the site's tools, shown to host-program runtimes


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

    def launch(self, job: Job) -> Launch: ...

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

    def launch(self, job: Job) -> Launch:
        argv = [self.executable, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc",
                "--unshare-uts", "--unshare-cgroup-try"]
        if not job.network:
            argv.append("--unshare-net")
        privileged = os.geteuid() == 0
        if not privileged:  # bubblewrap makes a user namespace; the command keeps the executor's own uid
            argv += ["--unshare-user", "--uid", str(job.user.uid), "--gid", str(job.user.gid), "--cap-drop", "ALL"]
        argv += ["--dev", "/dev", "--proc", "/proc", "--perms", "01777", "--tmpfs", "/tmp", "--clearenv"]
        argv += view_arguments(visible_host_paths(job.host_path), [b.target for b in job.binds])
        made: set[str] = set()
        for bind in sorted(job.binds, key=lambda b: b.target.count("/")):  # parents before what is mounted in them
            argv += parent_directories(bind.target, made)
            argv += ["--bind" if bind.writable else "--ro-bind", str(bind.source), bind.target]
        for key, value in job.env.items():
            argv += ["--setenv", key, value]
        argv += ["--chdir", job.cwd, "--", *(drop_privileges(job.user) if privileged else []), *job.command]
        note = f"; container image {job.image} not used: this cluster has no container engine" if job.image else ""
        return Launch(argv, {}, f"bubblewrap {self.executable} as uid {job.user.uid}, on a read-only view of this "
                                f"host's system programs{note}")


class Docker:
    name = "docker"
    uses_images = True
    global_args: list[str] = []  # options before the verb, on every command  # noqa: RUF012 - never mutated

    def __init__(self, executable: str | None = None, host: str | None = None, image_user: bool = False):
        self.image_user = image_user
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

    def launch(self, job: Job) -> Launch:
        if not job.image:
            raise RuntimeUnavailable("a Docker cluster needs a container_image")
        argv = [self.executable, *self.global_args, "run", "--rm", "--name", job.name,
                "--network", "host" if job.network else "none",
                # lower than the machine's hard limits: runtimes that set rlimits fail otherwise (machine notes)
                "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--workdir", job.cwd,
                "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--tmpfs", "/tmp:exec,mode=1777"]  # TMPDIR, writable whatever the image's /tmp (or lack of one)
        if not self.image_user:  # the sandbox uid, unless the site lets images run as their own user
            argv += ["--user", f"{job.user.uid}:{job.user.gid}"]
        if job.constraints.get("ram"):
            argv += ["--memory", str(int(job.constraints["ram"]))]
        if job.constraints.get("vcpus"):
            argv += ["--cpus", str(job.constraints["vcpus"])]
        for key, value in job.env.items():
            argv += ["--env", f"{key}={value}"]
        for bind in sorted(job.binds, key=lambda b: b.target.count("/")):
            argv += ["--volume", f"{bind.source}:{bind.target}{'' if bind.writable else ':ro'}"]
        argv += [job.image, *job.command]
        who = "the image's own user" if self.image_user else f"uid {job.user.uid}"
        return Launch(argv, self.env, f"docker ({self.executable}, host {self.env.get('DOCKER_HOST', 'default')}), "
                                      f"image {job.image}, as {who}, no capabilities")


class Podman(Docker):
    """Docker's command line, through rootful podman with runc and cgroupfs (this kind of machine's
    crun refuses hybrid cgroups, and conmon's cleanup misses settings given by environment)."""

    name = "podman"
    GLOBAL = ("--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", "runc")

    def __init__(self, executable: str | None = None, storage: str | None = None, image_user: bool = False):
        self.image_user = image_user
        found = executable or shutil.which("podman")
        if found is None:
            raise RuntimeUnavailable("this cluster runs containers with Podman, but podman is not installed")
        self.executable = found
        self.env = dict(os.environ)
        self.global_args = list(self.GLOBAL)
        if storage:
            self.global_args += ["--root", f"{storage}/root", "--runroot", f"{storage}/run"]

    def launch(self, job: Job) -> Launch:
        launch = super().launch(job)
        return Launch(launch.argv, launch.env, launch.description.replace("docker (", "podman (", 1))


def runtime_for(name: str, docker_host: str | None = None, podman_storage: str | None = None,
                image_user: bool = False) -> Runtime:
    if name == "bubblewrap":
        return Bubblewrap()
    if name == "docker":
        return Docker(host=docker_host, image_user=image_user)
    if name == "podman":
        return Podman(storage=podman_storage, image_user=image_user)
    raise RuntimeUnavailable(f"unknown container runtime {name!r} (this cluster supports: bubblewrap, docker, "
                             "podman)")
