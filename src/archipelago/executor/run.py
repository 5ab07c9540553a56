"""`archi crunch-run CONTAINER_UUID`: run one locked container, as Arvados' crunch-run does
(reference arvados-compute.md §3.5): claim a sandbox user, stage its mounts, mark it Running, run
the command in the cluster's runtime with its environment, working directory and time limit,
then save the output directory and the logs as collections and mark it Complete (the program ran
and exited) or Cancelled (the system failed: a mount, the runtime, a signal from the dispatcher).

This process is the trust boundary: it runs with the host's rights for a tenant's command. What
the request says and what the container leaves behind are read as a stranger's words (mounts.py,
beneath.py, outputs.py); the command itself runs as an unprivileged uid of its own (sandbox.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import ArchipelagoError
from ..ids import UUID_RE
from ..lifetime import die_with_parent
from ..sdk.client import ApiClient
from ..sdk.collection import Collection
from . import READ_BY_CLUSTER
from .cgroups import Limits, end_processes
from .disk import DiskGuard
from .fusefs import Warm
from .fusefs import unavailable as fuse_unavailable
from .logs import Logs, stamp
from .mounts import Bind, Staged, stage_mounts
from .outputs import OutputSaver
from .published import PUBLISHED_TARGET, publish, unpublish
from .runtimes import Job, Launch, Runtime, runtime_for
from .sandbox import SandboxUser, claim_user, identity_files, parse_uid_range

LIVE_LOG_SECONDS = 3.0  # how often a running container's logs are published (and its disk use measured)
DEFAULT_MIN_FREE_DISK = 256 << 20
# this Archipelago's own commands, last on host-runtime containers' PATH (a submitted `archi run` needs them)
ARCHI_BIN = Path(sys.executable).parent


class Executor:
    def __init__(self, api: ApiClient, container_uuid: str, runtime: Runtime | None = None,
                 work_root: Path | None = None, sandbox_uids: tuple[int, int] | None = None,
                 warm: Warm | None = None, fuse_problem: str | None = ""):
        self.api, self.uuid = api, container_uuid
        self._warm = warm  # a FUSE process started ahead (a warm executor's)
        self._fuse_problem = fuse_problem  # why FUSE cannot be used here (None: it can; "": not yet known)
        self.runtime_name = runtime.name if runtime else None
        self._runtime = runtime
        root = self._root = work_root or Path(tempfile.gettempdir())
        self.workdir = Path(tempfile.mkdtemp(prefix=f"crunch-{container_uuid}-", dir=root))  # 0700: ours alone
        self._user_locks = root / "archipelago-sandbox-users"
        self._uids = sandbox_uids or parse_uid_range(os.environ.get("ARCHI_SANDBOX_UIDS"))
        self.max_disk = int(os.environ.get("ARCHI_MAX_DISK") or 0)
        self.min_free_disk = int(os.environ.get("ARCHI_MIN_FREE_DISK") or DEFAULT_MIN_FREE_DISK)
        self.logs = Logs(self.workdir / "log")
        self._process: subprocess.Popen[bytes] | None = None
        self._cancelled = False
        self._name = ""
        self._stop_runtime: Any = lambda: None
        self._live_log: str | None = None  # the log collection published while the command runs
        self._published: Path | None = None  # the link to a service it publishes (executor/published.py)
        self.bytes_read: dict[str, int] | None = None  # what the mounts read, by cluster, once they are gone
        self.elsewhere: ApiClient | None = None
        self._trashing: list[threading.Thread] = []  # collections being trashed while the run ends
        # where this cluster installs programs its host-runtime containers may run (containers.host_path)
        self.host_path = [p for p in os.environ.get("ARCHI_HOST_PATH", "").split(":") if p]

    # ---------------------------------------------------------------- the run
    def run(self) -> str:
        """Run the container to a final state; returns that state."""
        signal.signal(signal.SIGTERM, self._cancel)
        signal.signal(signal.SIGINT, self._cancel)
        container = self.api.request("GET", f"containers/{self.uuid}")
        if container["state"] != "Locked":
            raise ArchipelagoError(f"container {self.uuid} is {container['state']}, not Locked", 422)
        auth = self.api.request("GET", f"containers/{self.uuid}/auth")
        token = f"v2/{auth['uuid']}/{auth['api_token']}"
        # the executor's connections (no second TLS handshake), with the container's token
        as_container = ApiClient(self.api.base, token, self.api.insecure, transport=self.api.connection.transport)
        runtime = auth.get("runtime_token")  # a remote request's: the requester's home issued it
        self.elsewhere = ApiClient(self.api.base, runtime, self.api.insecure, transport=self.api.connection.transport) \
            if runtime else None
        state, updates = "Cancelled", {}
        user: SandboxUser | None = None
        try:
            user = claim_user(self._user_locks, *self._uids)
            if user.evicted:
                self.logs.crunch_run(f"sandbox uid {user.uid}: ended {user.evicted} processes a dead executor's "
                                     "container left running as it")
            updates = self._run(container, as_container, user)
            state = "Complete"
        except Exception as exc:  # a failure of the system, not of the program: the log says which
            self.logs.crunch_run(f"error: {exc}")
            updates = {"runtime_status": {**(container.get("runtime_status") or {}), "error": str(exc)}}
        finally:
            self.logs.crunch_run(f"container finished: {state}")
            if self.bytes_read is not None:  # ours, over anything the container wrote under this key
                status = updates.get("runtime_status") or self._runtime_status(container)
                updates["runtime_status"] = {**status, READ_BY_CLUSTER: self.bytes_read}
            updates["log"] = self._save_logs(as_container)
            if self._live_log is not None:
                as_container.request("POST", f"collections/{self._live_log}/trash")
            for thread in self._trashing:  # hidden before the container is Final, as before
                thread.join()
            self.api.request("PUT", f"containers/{self.uuid}", body={"container": {"state": state, **updates}})
            unpublish(self._published)
            if self._warm is not None:
                self._warm.discard()  # unused (it was not needed, or the run failed before its mounts)
            shutil.rmtree(self.workdir, ignore_errors=True)
            if user is not None:
                user.release()  # after its files are gone: the next container to get this uid finds none
        return state

    def _run(self, container: dict[str, Any], client: ApiClient, user: SandboxUser) -> dict[str, Any]:
        log = self.logs.crunch_run
        log(f"executing container {self.uuid} on {platform.node()}")
        runtime = self._runtime or runtime_for("bubblewrap")
        secret_mounts = self.api.request("GET", f"containers/{self.uuid}/secret_mounts").get("secret_mounts", {})
        problem = fuse_unavailable() if self._fuse_problem == "" else self._fuse_problem
        lazy = problem is None
        if not lazy:
            log(f"collections are staged: FUSE is not available here ({problem})")
        staged = stage_mounts(container, client, self.workdir / "mounts", secret_mounts, log, lazy, self.elsewhere,
                              user, self._warm if lazy else None)
        try:
            return self._run_staged(container, client, runtime, staged, user)
        finally:
            for mount in staged.lazy:
                staged.bytes_by_cluster.update(mount.stop())
            self.bytes_read = {}
            for cluster, size in sorted(staged.bytes_by_cluster.items()):
                where = "here" if cluster == "local" else f"by cluster {cluster}"
                log(f"read {size} bytes of mounted data held {where}")
                held_by = self.uuid[:5] if cluster == "local" else cluster  # a container's UUID names its cluster
                self.bytes_read[held_by] = self.bytes_read.get(held_by, 0) + int(size)

    def _runtime_status(self, container: dict[str, Any]) -> dict[str, Any]:
        """The container's runtime_status as it ends: one with API access may have reported on itself
        (a runner does); the others could not have changed it."""
        if not (container.get("runtime_constraints") or {}).get("API"):
            return dict(container.get("runtime_status") or {})
        try:
            return dict(self.api.request("GET", f"containers/{self.uuid}").get("runtime_status") or {})
        except ArchipelagoError:
            return dict(container.get("runtime_status") or {})

    def _run_staged(self, container: dict[str, Any], client: ApiClient, runtime: Runtime, staged: Staged,
                    user: SandboxUser) -> dict[str, Any]:
        log = self.logs.crunch_run
        constraints = container.get("runtime_constraints") or {}
        env = {"HOME": container.get("output_path") or "/tmp", "TMPDIR": "/tmp",
               "PATH": ":".join([*self.host_path, "/usr/local/bin", "/usr/bin", "/bin", str(ARCHI_BIN)]),
               **(container.get("environment") or {})}
        if constraints.get("API"):
            env.update({"ARVADOS_API_HOST": self.api.connection.host, "ARVADOS_API_TOKEN": client.token,
                        "ARVADOS_API_HOST_INSECURE": "1" if self.api.insecure else "0"})
        image = self._image(runtime, container.get("container_image"), client)
        self._name = f"archi-{self.uuid}"
        self._stop_runtime = lambda: runtime.stop(self._name)
        home = container.get("output_path") or "/tmp"
        binds = staged.binds if runtime.uses_images else \
            [*staged.binds, *(Bind(path, target, False) for target, path in
                              identity_files(self.workdir / "etc", user, home).items())]
        self._published = next((publish(self._root, self.uuid, b.source) for b in staged.binds
                                 if b.target == PUBLISHED_TARGET and b.writable), None)  # executor/published.py
        launch = runtime.launch(Job(container["command"], container.get("cwd") or ".", env, binds,
                                    bool(constraints.get("API")), image, self._name, user, self.workdir / "runtime",
                                    constraints, self.host_path))
        log(f"runtime: {launch.description}")
        # the keep services its outputs and logs will be written to, asked while the command runs
        threading.Thread(target=self._keep_ahead, args=(client,), name="keep services", daemon=True).start()
        self._write_node_json(runtime.name, constraints)
        self.api.request("PUT", f"containers/{self.uuid}", body={"container": {"state": "Running"}})
        limits = Limits(self.uuid, constraints.get("ram"), constraints.get("vcpus")) if not runtime.uses_images \
            else None  # an engine applies its own (docker --memory, --cpus)
        if limits is not None:
            log(limits.describe())
        disk = DiskGuard([b.source for b in staged.binds if b.writable], self.max_disk, self.min_free_disk)
        log(disk.describe())
        try:
            exit_code = self._execute(launch, staged, container, limits, disk, client)
        finally:
            # whatever is still in the container's groups goes with it: a sandbox's first process
            # misses bubblewrap's own --die-with-parent when bubblewrap is stopped as it starts
            if limits is not None and (left := end_processes(self.uuid)):
                log(f"ended {left} processes the container left running")
        for mount in staged.lazy:  # the command is done with Keep
            mount.request_stop()
        if self._cancelled:
            raise ArchipelagoError("cancelled by the dispatcher")
        if constraints.get("API"):  # a container with API access may have set its own output (a runner does)
            own = self.api.request("GET", f"containers/{self.uuid}").get("output")
            if own:
                log(f"the container set its own output: {own}")
                return {"exit_code": exit_code, "output": own}
        output = self._save_output(client, staged, container.get("output_glob") or [])
        return {"exit_code": exit_code, "output": output}

    @staticmethod
    def _keep_ahead(client: ApiClient) -> None:
        with contextlib.suppress(ArchipelagoError, ConnectionError):  # asked again when needed
            client.keep()

    def _image(self, runtime: Runtime, image: str | None, client: ApiClient) -> str | None:
        """The engine's reference for the container's image, loaded from its collection in Keep."""
        if not runtime.uses_images:
            return image  # named in the log as not used
        if not image:
            raise ArchipelagoError(f"the {runtime.name} runtime needs a container_image", 422)
        where = self.workdir / "image"
        stage_mounts({"mounts": {"/image": {"kind": "collection", "portable_data_hash": image}}, "output_path": ""},
                     client, where, {}, self.logs.crunch_run)
        return runtime.load_image(where, image, self._root / "archipelago-images")  # the lifecycle made it a PDH

    def _execute(self, launch: Launch, staged: Staged, container: dict[str, Any], limits: Limits | None,
                 disk: DiskGuard, client: ApiClient) -> int:
        limit = (container.get("scheduling_parameters") or {}).get("max_run_time") or None
        stdin = open(staged.stdin, "rb") if staged.stdin else subprocess.DEVNULL  # noqa: SIM115
        stdout = open(staged.stdout, "wb") if staged.stdout is not None else subprocess.PIPE  # noqa: SIM115
        stderr = open(staged.stderr, "wb") if staged.stderr is not None else subprocess.PIPE  # noqa: SIM115
        started = time.monotonic()
        self.logs.crunch_run(f"running {json.dumps(container['command'])}")
        try:
            try:  # the runtime program's own environment, never this executor's (it holds the cluster's token)
                self._process = subprocess.Popen(launch.argv, stdin=stdin, stdout=stdout, stderr=stderr,
                                                 env=launch.env, pass_fds=launch.pass_fds, start_new_session=True,
                                                 preexec_fn=partial(_before_exec, limits, os.getpid()))
            finally:
                launch.close()
            if self._cancelled:  # the dispatcher asked while the mounts were made: it asks only once
                self._stop()
            pumps = [self.logs.follow(stream, name) for stream, name in
                     ((self._process.stdout, "stdout.txt"), (self._process.stderr, "stderr.txt")) if stream]
            code = self._wait(started, limit, disk, client)
            for pump in pumps:
                pump.join(5)
        finally:
            for handle in (stdin, stdout, stderr):
                if hasattr(handle, "close"):
                    handle.close()
        seconds = time.monotonic() - started
        if limits is not None and code != 0 and limits.oom_killed():
            self.logs.crunch_run(f"the command ran out of its {container['runtime_constraints'].get('ram')} bytes of "
                                 "RAM and was killed")
        if code < 0:
            self.logs.crunch_run(f"command exited with status code {128 - code} "
                                 f"(signal {-code}, {signal.Signals(-code).name}) after {seconds:.3f} s")
            code = 128 - code
        else:
            self.logs.crunch_run(f"command exited with status code {code} after {seconds:.3f} s")
        return code

    def _wait(self, started: float, limit: float | None, disk: DiskGuard, client: ApiClient) -> int:
        """Wait for the command, publishing the logs every LIVE_LOG_SECONDS so they can be followed, and
        stopping it if it overstays its time or fills the disk."""
        assert self._process is not None
        while True:
            remaining = None if limit is None else limit - (time.monotonic() - started)
            if remaining is not None and remaining <= 0:
                self._stop()
                raise ArchipelagoError(f"maximum run time ({limit} s) exceeded")
            try:
                return self._process.wait(timeout=min(LIVE_LOG_SECONDS, remaining or LIVE_LOG_SECONDS))
            except subprocess.TimeoutExpired:
                if (problem := disk.problem()) is not None:
                    self._stop()
                    raise ArchipelagoError(f"stopped: {problem}") from None
                self._publish_logs(client)

    def _publish_logs(self, client: ApiClient) -> None:
        """The logs so far, as a collection the container's `log` points at (for followers)."""
        try:
            collection = Collection(client)
            for path in sorted(self.logs.directory.iterdir()):
                collection.write(path.name, path.read_bytes())
            if self._live_log is None:
                self._live_log = collection.save_new(f"logs for {self.uuid} (live)")["uuid"]
            else:
                collection.record = {"uuid": self._live_log}
                collection.save()
            self.api.request("PUT", f"containers/{self.uuid}",
                             body={"container": {"log": collection.record["portable_data_hash"]}})
        except ArchipelagoError as exc:
            self.logs.crunch_run(f"could not publish the logs so far: {exc}")

    def _cancel(self, signum: int, frame: Any) -> None:
        self._cancelled = True
        self.logs.crunch_run(f"received signal {signum}: stopping the container")
        self._stop()

    def _stop(self) -> None:
        self._stop_runtime()
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)

    # ---------------------------------------------------------------- results
    def _save_output(self, client: ApiClient, staged: Staged, globs: list[str]) -> str:
        assert staged.output_dir is not None
        collection = Collection(client)
        saver = OutputSaver(staged.output_dir, staged.output_path, staged.collections, staged.keep_target,
                            lambda pdh: self._manifest(client, pdh), self.logs.crunch_run, globs, staged.placed)
        saver.save(collection)
        if saver.by_reference:
            self.logs.crunch_run(f"{saver.by_reference} bytes of inputs placed in the output directory saved by "
                                 "reference (unchanged: no upload)")
        return self._saved(client, collection, f"output for {self.uuid}")

    def _manifest(self, client: ApiClient, pdh: str) -> str | None:
        """A collection the container could read through its keep mount (its token, then the requester's)."""
        for reader in (client, self.elsewhere):
            if reader is not None:
                try:
                    return str(reader.collections.get(pdh)["manifest_text"])
                except ArchipelagoError:
                    continue
        return None

    def _save_logs(self, client: ApiClient) -> str | None:
        try:
            collection = Collection(client)
            for path in sorted(self.logs.directory.iterdir()):
                collection.write(path.name, path.read_bytes())
            return self._saved(client, collection, f"logs for {self.uuid}")
        except ArchipelagoError as exc:
            self.logs.crunch_run(f"could not save the logs: {exc}")
            return None

    def _saved(self, client: ApiClient, collection: Collection, name: str) -> str:
        """Saved as a trashed collection (as crunch-run does): the requests get their own records."""
        record = collection.save_new(f"{name} {stamp()}")

        def trash() -> None:  # meanwhile the run goes on to its end (the final state names it by PDH)
            try:
                client.request("POST", f"collections/{record['uuid']}/trash")
            except ArchipelagoError as exc:
                self.logs.crunch_run(f"could not trash {name}: {exc}")
        self._trashing.append(threading.Thread(target=trash, name=f"trash {name}"))
        self._trashing[-1].start()
        return str(record["portable_data_hash"])

    def _write_node_json(self, runtime: str, constraints: dict[str, Any]) -> None:
        node = {"hostname": platform.node(), "runtime": runtime, "cores": os.cpu_count(),
                "ram": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                "runtime_constraints": constraints, "python": platform.python_version()}
        (self.logs.directory / "node.json").write_text(json.dumps(node, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """`python -m archipelago.executor UUID` (or `--sweep UUID`): what the dispatcher starts. Lighter than the CLI (half
    the import time), with the same environment: ARCHI_API_*, ARCHI_CONTAINER_RUNTIME, ARCHI_WORK_DIR,
    ARCHI_HOST_PATH, ARCHI_SANDBOX_UIDS, ARCHI_IMAGE_USER."""
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["--sweep"]:  # the dispatcher found this container's executor dead
        if not UUID_RE.fullmatch(args[1]):
            return 2
        print(f"{args[1]}: ended {end_processes(args[1])} processes its executor left", flush=True)
        return 0
    uuid = args[0]
    api, warm = ApiClient.from_env(), None
    problem: str | None = ""
    if uuid == "--warm":  # started ahead: what does not depend on the container is done before it comes
        problem = fuse_unavailable()
        warm = Warm() if problem is None else None  # the FUSE process, imports done, waiting too
        uuid = sys.stdin.readline().strip()
        with contextlib.suppress(OSError):  # it waited at a low priority (__main__.py): now it is a container's
            os.setpriority(os.PRIO_PROCESS, 0, 0)
        if not uuid:  # the dispatcher went away first
            if warm is not None:
                warm.discard()
            return 0
    os.umask(0o022)  # what it stages is read by the sandbox user; its directories are 0700 themselves
    work = os.environ.get("ARCHI_WORK_DIR")
    runtime = runtime_for(os.environ.get("ARCHI_CONTAINER_RUNTIME", "bubblewrap"), os.environ.get("DOCKER_HOST"),
                          os.environ.get("ARCHI_PODMAN_STORAGE"), os.environ.get("ARCHI_IMAGE_USER") == "1")
    executor = Executor(api, uuid, runtime, Path(work) if work else None, warm=warm, fuse_problem=problem)
    os.chdir(executor.workdir)  # /proc/<pid>/cwd names the container (a warm executor's command line does not)
    state = executor.run()
    print(f"{uuid} {state}", flush=True)
    return 0 if state == "Complete" else 1


def _before_exec(limits: Limits | None, executor: int) -> None:
    """In the runtime's process, before its exec: killed with the executor from here on (not only
    once the runtime sets that up itself: a SIGKILLed executor left bubblewrap running), then into
    the container's cgroups."""
    die_with_parent(signal.SIGKILL, executor)
    if limits is not None:
        limits.enter()
