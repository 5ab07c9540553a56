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

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import ArchipelagoError
from ..files import exclusive_directory, write_private
from .mounts import Bind
from .sandbox import (
    DROPPING,
    SandboxUser,
    drop_privileges,
    environment_fd,
    parent_directories,
    shown_over_mounts,
    view_arguments,
    visible_host_paths,
    with_environment,
)


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
    scratch: Path  # the executor's own directory for this job's runtime files (never shown to it)
    constraints: dict[str, Any] = field(default_factory=dict)
    host_path: list[str] = field(default_factory=list)  # the site's tools, shown to host-program runtimes


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str]  # the runtime program's own environment (never the container's)
    description: str
    pass_fds: tuple[int, ...] = ()  # descriptors the runtime program inherits (closed here once it started)

    def close(self) -> None:
        for fd in self.pass_fds:
            os.close(fd)


class Runtime(Protocol):
    name: str
    uses_images: bool

    def load_image(self, image_dir: Path, pdh: str, verified: Path) -> str:
        """The engine's reference for the image staged (from Keep, collection `pdh`) in `image_dir`;
        `verified` remembers which collections this host's engine has loaded."""
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

    def load_image(self, image_dir: Path, pdh: str, verified: Path) -> str:
        raise RuntimeUnavailable("bubblewrap runs no images")

    def stop(self, name: str) -> None:
        pass  # --die-with-parent: killing the process is enough

    def launch(self, job: Job) -> Launch:
        argv = [self.executable, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc",
                "--unshare-uts", "--unshare-cgroup-try"]
        if not job.network:
            argv.append("--unshare-net")
        privileged = os.geteuid() == 0
        if privileged:  # what the first process in the sandbox (setpriv, root) needs to drop to the uid, no more
            argv += ["--cap-drop", "ALL", *(arg for cap in DROPPING for arg in ("--cap-add", cap))]
        else:  # bubblewrap makes a user namespace; the command keeps the executor's own uid
            argv += ["--unshare-user", "--uid", str(job.user.uid), "--gid", str(job.user.gid), "--cap-drop", "ALL"]
        argv += ["--dev", "/dev", "--proc", "/proc", "--perms", "01777", "--tmpfs", "/tmp",
                 "--clearenv", "--setenv", "PATH", "/usr/bin:/bin"]
        visible = visible_host_paths(job.host_path)
        argv += view_arguments(visible, [b.target for b in job.binds])
        made: set[str] = set()
        for bind in sorted(job.binds, key=lambda b: b.target.count("/")):  # parents before what is mounted in them
            argv += parent_directories(bind.target, made)
            argv += ["--bind" if bind.writable else "--ro-bind", str(bind.source), bind.target]
        argv += shown_over_mounts(visible, [b.target for b in job.binds])
        # the container's environment is set only once it is the sandbox user (an LD_PRELOAD given to the
        # root stage would run as root), and it travels in a descriptor, never on a command line others can read
        environment = environment_fd(job.env)
        argv += ["--chdir", job.cwd, "--", *(drop_privileges(job.user) if privileged else []),
                 *with_environment(environment), *job.command]
        note = f"; container image {job.image} not used: this cluster has no container engine" if job.image else ""
        return Launch(argv, {}, f"bubblewrap {self.executable} as uid {job.user.uid}, on a read-only view of this "
                                f"host's system programs{note}", (environment,))


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
        self.env = {**engine_environment(), **({"DOCKER_HOST": host} if host else {})}

    def _docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.executable, *self.global_args, *args], env=self.env, capture_output=True,
                                text=True)
        if check and result.returncode != 0:
            raise RuntimeUnavailable(f"{self.name} {args[0]} failed: {result.stderr.strip()[-500:]}")
        return result

    def load_image(self, image_dir: Path, pdh: str, verified: Path) -> str:
        """The image's ID, as the engine computes it (the sha256 of its config, read from the tar —
        never the tar's file name, which the tenant chose). The tar is loaded unless this engine
        loaded this very collection (PDH) before: an image already in the engine is only used by
        someone who holds its content, not by whoever names its ID."""
        tars = sorted(image_dir.rglob("sha256:*.tar")) or sorted(image_dir.rglob("*.tar"))
        if not tars:
            raise RuntimeUnavailable(f"the image collection has no image tar (sha256:<id>.tar): {image_dir}")
        image_id = image_id_of(tars[0])
        record = exclusive_directory(verified) / self.engine_key() / pdh  # a planted record would lend an image
        known = record.read_text() if record.exists() else None
        if known != image_id or self._docker("image", "inspect", image_id, check=False).returncode != 0:
            plain = tars[0].with_name("image.tar")  # podman reads a colon in a path as a transport
            if not plain.exists():
                plain.symlink_to(tars[0].name)
            self._docker("load", "-i", str(plain))
            if self._docker("image", "inspect", image_id, check=False).returncode != 0:
                raise RuntimeUnavailable(f"the image tar did not load as {image_id}")
            record.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            record.write_text(image_id)
        return image_id

    def engine_key(self) -> str:
        """Which engine (and image store) a loaded image lives in."""
        return hashlib.md5(json.dumps([self.executable, self.global_args, self.env.get("DOCKER_HOST")])
                           .encode()).hexdigest()

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
        argv += ["--env-file", str(env_file(job.scratch / "environment", job.env))]  # not on the command line
        for bind in sorted(job.binds, key=lambda b: b.target.count("/")):
            if any(c in f"{bind.source}{bind.target}" for c in ":,"):  # the engine would read them as options
                raise RuntimeUnavailable(f"mount target {bind.target!r} cannot be given to {self.name} "
                                         "(':' and ',' are its option separators)")
            argv += ["--volume", f"{bind.source}:{bind.target}{'' if bind.writable else ':ro'}"]
        if not IMAGE_ID.fullmatch(job.image):
            raise RuntimeUnavailable(f"not an image ID: {job.image!r}")
        argv += ["--", job.image, *job.command]
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


IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")


def image_id_of(tar: Path) -> str:
    """The ID an engine gives the image in a `docker save` tar: the sha256 of its config."""
    try:
        with tarfile.open(tar) as archive:
            manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
            config = archive.extractfile(manifest[0]["Config"])
            digest = hashlib.sha256(config.read()).hexdigest()  # type: ignore[union-attr]
    except (tarfile.TarError, KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise RuntimeUnavailable(f"the image tar {tar.name!r} is not a `docker save` archive ({exc})") from None
    return f"sha256:{digest}"


def env_file(path: Path, env: dict[str, str]) -> Path:
    """The container's environment for `--env-file` (owner-only, in the executor's directory)."""
    for key, value in env.items():
        if "\n" in value or "\n" in key or "=" in key:
            raise RuntimeUnavailable(f"environment variable {key!r}: a name with '=' or a value with a newline "
                                     "cannot be given to a container engine")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, "".join(f"{key}={value}\n" for key, value in env.items()))
    return path


def engine_environment() -> dict[str, str]:
    """The engine's client runs with this executor's environment, less its credentials."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("ARCHI_", "ARVADOS_"))}


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
