"""What a container's command is and sees on this host, whatever runtime runs it.

- It runs as an unprivileged uid of its own (one per running container, from the cluster's
  `containers.sandbox_uids` range, claimed with a lock file for the container's life), with no
  capabilities and `no_new_privs`: a process of one tenant cannot signal, trace or out-fork
  another's, and owns nothing on the host but its own output and tmp directories.
- A host-program runtime (bubblewrap) shows it a minimal read-only host view: the system's
  programs and libraries, the /etc entries programs need (certificates, name service, time zone —
  never shadow, ssh, munge or slurm keys), the site's `host_path` software and this Archipelago's
  own interpreter and environment. Never the cluster's directories, /root, /home, other
  containers' work directories or the dispatcher's and API's files: they are simply not there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import ArchipelagoError
from ..files import exclusive_directory

SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# what programs read from /etc; secrets (shadow, ssh, munge, slurm, ssl/private keys) are never here
ETC_ENTRIES = (
    "alternatives", "bash.bashrc", "ca-certificates", "ca-certificates.conf", "debian_version", "environment",
    "fonts", "gai.conf", "host.conf", "hostname", "hosts", "inputrc", "java-17-openjdk", "ld.so.cache",
    "ld.so.conf", "ld.so.conf.d", "locale.alias", "localtime", "magic", "magic.mime", "mime.types", "networks",
    "nsswitch.conf", "os-release", "perl", "profile", "protocols", "python3", "python3.11", "R", "resolv.conf",
    "rpc", "services", "shells", "ssl/certs", "ssl/openssl.cnf", "terminfo", "timezone", "xml",
)
DEFAULT_UIDS = (200_000, 1000)  # first uid, how many: one per container running at once on a node


class SandboxUnavailable(ArchipelagoError):
    status = 503


@dataclass
class SandboxUser:
    """The uid a container's command runs as, held (by an open, locked file) until released."""

    uid: int
    gid: int
    _lock: IO[bytes] | None = None
    evicted: int = 0  # processes found still running as this uid when it was claimed, and killed

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def parse_uid_range(text: str | None) -> tuple[int, int]:
    """`FIRST-LAST` (ARCHI_SANDBOX_UIDS) as (first, count)."""
    if not text:
        return DEFAULT_UIDS
    first, _, last = text.partition("-")
    return int(first), int(last) - int(first) + 1


def claim_user(lock_dir: Path, first: int, count: int) -> SandboxUser:
    """A uid no other container on this host is running as now. Executors are separate processes:
    an flock on `<lock_dir>/<uid>.lock` is the claim, dropped by the kernel if the executor dies.
    A sandbox may outlive its executor (SIGKILLed, see SECURITY.md): whatever still runs as the
    uid once its lock is free is ended before the uid is handed on, or the uid is passed over —
    else the next tenant's command would share a uid with it (signals, ptrace, its files).
    An executor that is not root cannot switch users: its containers run as itself."""
    if os.geteuid() != 0:
        return SandboxUser(os.getuid(), os.getgid())
    exclusive_directory(lock_dir)  # another user's locks would starve us of uids
    start = random.randrange(count)  # spreading claims, not a secret
    for n in range(count):
        uid = first + (start + n) % count
        handle = open(lock_dir / f"{uid}.lock", "ab")  # noqa: SIM115 - held for the container's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        evicted = _evict(uid)
        if evicted is None:
            handle.close()
            continue
        return SandboxUser(uid, uid, handle, evicted)
    raise SandboxUnavailable(f"all {count} sandbox uids from {first} are in use on this host")


def _evict(uid: int) -> int | None:
    """End every process still running as `uid` (its lock is ours: none of them is a live
    container's); how many a scan found first (for the log), or None if some would not end (the
    uid is not safe). Killed by a child that becomes the uid and sends SIGKILL to -1: the kernel
    signals every process the uid owns at once, as a fork cannot slip past it — a process that
    forks and exits over and over is never where a scan of /proc then a kill by pid looks. (kill(-1)
    says nothing useful about what it reached: it fails only when no other process exists at all.)"""
    found = len(running_as(uid))
    for _ in range(10):
        _kill_all_as(uid)
        for _ in range(10):  # a process sent SIGKILL may take a moment to be gone
            if not running_as(uid):
                return found
            time.sleep(0.01)
    return None


def _kill_all_as(uid: int) -> None:
    child = os.fork()
    if child == 0:
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)  # every process of the uid but this one
        finally:
            os._exit(0)
    os.waitpid(child, 0)


def running_as(uid: int) -> set[int]:
    """Live processes (not zombies: they hold nothing) with `uid` as any of their user ids."""
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as status:
                fields = dict(line.split(b":", 1) for line in status.read().splitlines() if b":" in line)
        except OSError:  # it ended meanwhile
            continue
        state, uids = fields.get(b"State", b"").split(), fields.get(b"Uid", b"").split()
        if state[:1] != [b"Z"] and str(uid).encode() in uids:
            found.add(int(entry.name))
    return found


def own_directory(path: Path, user: SandboxUser) -> None:
    """A directory the container writes (its output, a tmp mount): its own, nobody else's."""
    if (path.stat().st_uid, path.stat().st_gid) != (user.uid, user.gid):
        os.chown(path, user.uid, user.gid)
    path.chmod(0o755)


def identity_files(where: Path, user: SandboxUser, home: str) -> dict[str, Path]:
    """/etc/passwd and /etc/group naming the sandbox user (tools that look themselves up — git, ssh,
    R, Python's getpass — work), and nothing of the host's accounts."""
    where.mkdir(parents=True, exist_ok=True)
    passwd, group = where / "passwd", where / "group"
    passwd.write_text(f"root:x:0:0:root:/root:/bin/sh\ncrunch:x:{user.uid}:{user.gid}:container:{home}:/bin/sh\n"
                      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    group.write_text(f"root:x:0:\ncrunch:x:{user.gid}:\nnogroup:x:65534:\n")
    return {"/etc/passwd": passwd, "/etc/group": group}


DROPPING = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")  # all the first process in the sandbox needs: to drop
# Runs as the sandbox user, before the command: reads the container's environment from a descriptor
# and becomes the command with it (`python -I -S`: no site, no PYTHON* variables, ~10 ms).
LAUNCHER = """import os, sys
fd, argv = int(sys.argv[1]), sys.argv[2:]
chunks = []
while chunk := os.read(fd, 1 << 16):
    chunks.append(chunk)
os.close(fd)
env = dict(entry.split(b"=", 1) for entry in b"".join(chunks).split(b"\\0") if entry)
try:
    os.execvpe(argv[0], argv, env)
except OSError as exc:
    print(f"{argv[0]}: {exc.strerror}", file=sys.stderr)
    sys.exit(127 if isinstance(exc, FileNotFoundError) else 126)
"""


def environment_fd(env: dict[str, str]) -> int:
    """The container's environment in an anonymous file (NUL-separated `KEY=value`), for the launcher."""
    fd = os.memfd_create("archipelago-environment", 0)
    os.write(fd, b"".join(f"{key}={value}".encode() + b"\0" for key, value in env.items()))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def with_environment(fd: int) -> list[str]:
    """The command prefix that starts the command with the environment in `fd` (this Archipelago's
    interpreter, which the sandbox always shows)."""
    return [os.path.realpath(sys.executable), "-I", "-S", "-c", LAUNCHER, str(fd)]


def drop_privileges(user: SandboxUser) -> list[str]:
    """The command prefix that becomes the sandbox user inside the sandbox: setuid/setgid, no
    supplementary groups, every capability set (inheritable, ambient, bounding) emptied, and
    no_new_privs so no setuid program gives any back."""
    setpriv = "/usr/bin/setpriv"
    if not os.path.exists(setpriv):
        raise SandboxUnavailable("the sandbox needs setpriv (util-linux) to drop privileges")
    return [setpriv, f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups", "--inh-caps=-all",
            "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]


def visible_host_paths(host_path: list[str], etc: tuple[str, ...] = ETC_ENTRIES) -> list[Path]:
    """The host paths a host-program container sees (read-only), outermost first and each once."""
    wanted = [Path(p) for p in SYSTEM_PATHS] + [Path("/etc") / e for e in etc] + site_software(host_path)
    existing = [p for p in wanted if os.path.lexists(p)]
    return [p for p in dict.fromkeys(existing) if not any(q != p and q in p.parents for q in existing)]


def site_software(host_path: list[str]) -> list[Path]:
    """The site's tools (`containers.host_path`; a virtualenv's bin/ brings its virtualenv) and this
    Archipelago — its environment, the interpreter it was made from and, for an editable install,
    its source — so that a runner container can run `archi run` as the site does."""
    paths = []
    for entry in map(Path, host_path):
        paths.append(entry.parent if entry.name == "bin" and (entry.parent / "pyvenv.cfg").exists() else entry)
    paths += [Path(sys.prefix), Path(sys.base_prefix), Path(__file__).resolve().parents[2]]
    return [p.resolve() for p in paths if p.exists() and p.resolve() != Path("/")]


def view_arguments(visible: list[Path], targets: list[str]) -> list[str]:
    """bwrap arguments showing `visible` read-only. Where a mount's target lies inside a visible
    directory, that directory is rebuilt (its entries bound one by one) so the mount has a place."""
    args: list[str] = []

    def show(path: Path) -> None:
        inside = [t for t in targets if t.startswith(f"{path}/")]
        if str(path) in targets:
            return  # the mount itself goes here
        if path.is_symlink():
            target = os.readlink(path)
            resolved = path.resolve()
            if any(resolved == v or v in resolved.parents for v in visible):
                args.extend(["--symlink", target, str(path)])  # /bin -> usr/bin stays a link
            elif resolved.exists():
                args.extend(["--ro-bind", str(resolved), str(path)])  # its target is not shown: the content is
        elif inside and path.is_dir():
            args.extend(["--dir", str(path)])
            for entry in sorted(path.iterdir()):
                show(entry)
        else:
            args.extend(["--ro-bind", str(path), str(path)])

    made: set[str] = set()
    for path in visible:
        args.extend(parent_directories(str(path), made))
        show(path)
    return args


def shown_over_mounts(visible: list[Path], targets: list[str]) -> list[str]:
    """bwrap arguments, after the mounts, showing again (read-only) the visible paths a mount's target
    covers: a site's virtualenv under /tmp, where a CWL step mounts its own /tmp, was hidden by it."""
    covering = [t.rstrip("/") for t in targets if t.rstrip("/")]
    args: list[str] = []
    made: set[str] = set()
    for path in visible:
        below = [t for t in covering if str(path).startswith(f"{t}/")]
        if below:
            target = max(below, key=len)  # the innermost mount: its directories are the ones to make
            for parent in reversed(path.parents):
                if str(parent).startswith(f"{target}/") and str(parent) not in made:
                    made.add(str(parent))  # open to all, whatever mode bwrap would give it
                    args.extend(["--perms", "0755", "--dir", str(parent)])
            args.extend(["--ro-bind", str(path), str(path)])
    return args


def parent_directories(path: str, made: set[str]) -> list[str]:
    """bwrap arguments making the directories above `path` in the sandbox, each once and open to
    all (bwrap would copy the host's modes: a 0700 parent would hide what is bound beneath it)."""
    args: list[str] = []
    for parent in reversed(Path(path).parents[:-1] if Path(path).parents else []):
        if str(parent) not in made:
            made.add(str(parent))
            args.extend(["--perms", "0755", "--dir", str(parent)])
    return args
