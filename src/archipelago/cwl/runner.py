"""`archi run WORKFLOW JOB`: a CWL workflow whose CommandLineTools run as container requests, each
on the cluster its `arv:ClusterTarget` names (read as arvados-cwl-runner reads it: on the tool,
the step or the workflow; `cluster_id` and `project_uuid` may be expressions), else at home.

Local input files are uploaded once, to the home cluster; `keep:` inputs are used in place. A
step's collections are mounted in its container by PDH, so whatever it reads comes through the
federation on demand. Container reuse makes a re-run resume where a failed run stopped. The final
output collection is saved at home (blocks held elsewhere are copied home) and printed the way
cwltool prints outputs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cwltool.context import LoadingContext, RuntimeContext
from cwltool.errors import WorkflowException
from cwltool.executors import MultithreadedJobExecutor
from cwltool.load_tool import load_tool

from ..errors import ArchipelagoError
from ..sdk.client import ApiClient
from ..sdk.collection import Collection
from ..sdk.copy import client_for_cluster
from .fsaccess import PREFIX, KeepFsAccess, keep_location, split
from .job import OUTDIR
from .joborder import RunError, find_objects, local_path, read_job_order, upload_local_inputs, write_tree
from .tags import RUN, RUN_ID_ENV, STEP, WORKFLOW, new_run_id
from .tool import CLUSTER_TARGET, tool_factory

log = logging.getLogger("archipelago.cwl")
READ_LINE = re.compile(r"read (?P<bytes>\d+) bytes of mounted data held (?P<where>here|by cluster (?P<cluster>\w+))")
PARALLEL_STEPS = 64  # steps in flight at once (each is a container request on some cluster)


@dataclass
class StepReport:
    name: str
    cluster: str
    request_uuid: str
    state: str = "Committed"
    status: str = ""
    exit_code: int | None = None
    log_uuid: str | None = None
    output_pdh: str | None = None
    read_from: dict[str, int] = field(default_factory=dict)  # bytes the step read, by the cluster holding them
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0


class Runner:
    def __init__(self, home: ApiClient, reuse: bool = True, on_change: Any = None, prestage: bool = False):
        self.home, self.reuse, self.prestage = home, reuse, prestage
        config = home.config()
        self.home_id: str = config["ClusterID"]
        self.clusters = {self.home_id, *config.get("RemoteClusters", {})}
        self.run_id = os.environ.get(RUN_ID_ENV) or new_run_id(self.home_id)  # on every step's request
        self.workflow_name = ""
        self.steps: dict[str, StepReport] = {}
        self.inputs_pdh: str | None = None  # the collection local inputs were uploaded into
        self.failures: list[str] = []  # what went wrong, naming the step, its cluster and its log
        self.prestaged: dict[tuple[str, str], int] = {}  # (cluster, PDH) -> bytes sent ahead
        self._lock = threading.Lock()  # prestaging, uploads and followed clusters, from the step threads
        self._uploaded: dict[str, str] = {}  # local location -> keep: location
        self.on_change = on_change or (lambda steps: None)
        self._changed = threading.Condition()
        self._changes = 0  # counts the changes streamed in, so that none is missed between two looks
        self._stop = threading.Event()
        self._followed: set[str] = set()  # clusters whose change streams wake the waiting steps
        self._log_readers: list[threading.Thread] = []  # filling in each finished step's bytes read

    # ---------------------------------------------------------------- placement
    def cluster_for(self, job: Any) -> str:
        """The step's cluster: its step's ClusterTarget (evaluated with the step's inputs), else the
        most specific one that names a cluster (a tool's own hint before what it inherits from its
        workflow, which cwltool passes down as requirements; an empty one inherits, as in the
        official runner), else home."""
        evaluated = getattr(job, "archi_cluster_target", None)
        targets = [r for r in [*job.hints, *job.requirements] if r.get("class") == CLUSTER_TARGET]
        target = evaluated or next((r for r in targets if r.get("cluster_id")), targets[0] if targets else None)
        if not target:
            return self.home_id
        cluster = target.get("cluster_id")
        if isinstance(cluster, str) and ("$(" in cluster or "${" in cluster):
            cluster = job.builder.do_eval(cluster)
        cluster = cluster or self.home_id
        if cluster not in self.clusters:
            raise WorkflowException(f"step {job.name}: unknown or invalid cluster id {cluster!r} "
                                    f"(this federation: {', '.join(sorted(self.clusters))})")
        project = target.get("project_uuid")
        if isinstance(project, str) and ("$(" in project or "${" in project):
            project = job.builder.do_eval(project)
        if project and not str(project).startswith(cluster):
            raise WorkflowException(f"step {job.name}: project {project} is not on cluster {cluster}")
        job.archi_project = project
        return str(cluster)

    def stage_ahead(self, cluster: str, collections: set[str], name: str) -> None:
        """--prestage: a step's collections copied to its cluster before it runs, in one pass, for
        users who prefer that to reads on demand. What the cluster already has for the user (same
        PDH, same blocks) is not sent; what may not leave its cluster (residency) stays and is read
        where it is."""
        from ..sdk.copy import FederationCopy

        for pdh in sorted(collections):
            with self._lock:
                if (cluster, pdh) in self.prestaged:
                    continue
                try:
                    self.prestaged[(cluster, pdh)] = FederationCopy(self.home, cluster).copy(pdh).bytes_sent
                except ArchipelagoError as exc:
                    log.info("step %s: %s not staged on %s (%s); it will be read on demand", name, pdh, cluster, exc)
                    self.prestaged[(cluster, pdh)] = 0

    # ---------------------------------------------------------------- containers
    def submit(self, attrs: dict[str, Any], cluster: str, name: str) -> dict[str, Any]:
        params = {"cluster_id": cluster} if cluster != self.home_id else None
        tags = {RUN: self.run_id, STEP: name, WORKFLOW: self.workflow_name}
        attrs = {**attrs, "properties": {**(attrs.get("properties") or {}), **tags}}
        self.follow_changes(cluster)
        try:
            request = self.home.request("POST", "container_requests", params, {"container_request": attrs})
        except ArchipelagoError as exc:
            message = f"step {name}: cluster {cluster} did not take the container request: {exc}"
            self.failures.append(message)
            raise WorkflowException(message) from None
        self.steps[name] = StepReport(name, cluster, request["uuid"], request["state"])
        self._notify()
        return request

    def wait(self, uuid: str, name: str, cluster: str) -> dict[str, Any]:
        """The request once Final: woken by the home cluster's change stream, polled as a safety net."""
        delay = 0.1
        while True:
            with self._changed:
                seen = self._changes
            try:
                request = self.home.container_requests.get(uuid)
            except ArchipelagoError as exc:
                raise WorkflowException(f"step {name}: cluster {cluster} cannot be reached: {exc}") from None
            step = self.steps[name]
            container = self.container_of(request) if request.get("container_uuid") else None
            state = container["state"] if container else request["state"]
            if state != step.state:
                step.state = state
                self._notify()
            if request["state"] == "Final":
                return request
            with self._changed:  # a change that came while we looked: no waiting
                if self._changes == seen:
                    self._changed.wait(delay)
            delay = min(delay * 1.5, 1.0)

    def container_of(self, request: dict[str, Any]) -> dict[str, Any] | None:
        uuid = request.get("container_uuid")
        return self.home.containers.get(uuid) if uuid else None

    def finished(self, name: str, cluster: str, request: dict[str, Any], container: dict[str, Any] | None,
                 status: str) -> None:
        step = self.steps[name]
        step.status, step.log_uuid = status, request.get("log_uuid")
        step.exit_code = container.get("exit_code") if container else None
        step.output_pdh = container.get("output") if container else None
        # what it read, from its log: off the workflow's path (the next steps need not wait for it)
        reading = threading.Thread(target=self._fill_bytes_read, args=(step,), name=f"log-{name}", daemon=True)
        reading.start()
        self._log_readers.append(reading)
        step.state = container["state"] if container else request["state"]
        step.seconds = time.monotonic() - step.started
        if status != "success":
            why = (container or {}).get("runtime_status", {}).get("error") or f"exit code {step.exit_code}"
            message = f"step {name} failed on cluster {cluster} ({why}); its log: collection {step.log_uuid}"
            self.failures.append(message)
            log.error(message)
        self._notify()

    def _fill_bytes_read(self, step: StepReport) -> None:
        step.read_from = self._bytes_read(step)
        self._notify()

    def _bytes_read(self, step: StepReport) -> dict[str, int]:
        """What the step's container read, by cluster, as its executor logged it."""
        if not step.log_uuid:
            return {}
        try:
            text = Collection(self.home, step.log_uuid).read("crunch-run.txt").decode()
        except (ArchipelagoError, FileNotFoundError):
            return {}
        read: dict[str, int] = {}
        for match in READ_LINE.finditer(text):
            cluster = step.cluster if match["where"] == "here" else match["cluster"]
            read[cluster] = read.get(cluster, 0) + int(match["bytes"])
        return read

    def moved(self) -> dict[str, int]:
        """Bytes moved between each pair of clusters: read by a step on one, held by another."""
        pairs: dict[str, int] = {}
        for step in self.steps.values():
            for source, size in step.read_from.items():
                if source != step.cluster:
                    edge = f"{source}→{step.cluster}"
                    pairs[edge] = pairs.get(edge, 0) + size
        return pairs

    def _notify(self) -> None:
        self.on_change(self.steps)

    def wake(self) -> None:
        """A change streamed in: the waiting steps look again (counted, so that a step looking
        just then does not go to sleep on it)."""
        with self._changed:
            self._changes += 1
            self._changed.notify_all()

    def follow_changes(self, cluster: str) -> None:
        """Wake the waiting steps whenever `cluster` commits a change to a request or container: each
        cluster a step runs on is followed on its own stream (a remote one with the user's token
        salted for it), so no step waits on a poll. Where a stream cannot be had, polling remains."""
        with self._lock:
            if cluster in self._followed:
                return
            self._followed.add(cluster)
        try:
            client = self.home if cluster == self.home_id else client_for_cluster(self.home, cluster)
        except ArchipelagoError as exc:
            log.info("cannot follow cluster %s's changes (%s); its steps are polled", cluster, exc)
            return

        def follow() -> None:
            while not self._stop.is_set():
                try:
                    for _ in client.connection.events(["container_requests", "containers"]):
                        self.wake()
                        if self._stop.is_set():
                            return
                except (ConnectionError, ArchipelagoError):
                    self._stop.wait(1.0)

        threading.Thread(target=follow, name=f"cwl-events-{cluster}", daemon=True).start()

    # ---------------------------------------------------------------- inputs and outputs
    def prepare_inputs(self, tool: Any, job: Path | None) -> tuple[dict[str, Any], Path]:
        """The job order, its local files uploaded once to the home cluster."""
        job_order, basedir = read_job_order(tool, job, lambda basedir: KeepFsAccess(basedir, self.home))
        self.inputs_pdh = upload_local_inputs(self.home, job_order, basedir) or self.inputs_pdh
        return job_order, basedir

    def upload_local(self, location: str) -> str:
        """A local file or directory a document names (a default, say), uploaded once: its keep: location."""
        with self._lock:
            if location in self._uploaded:
                return self._uploaded[location]
            source = local_path(location, Path("."))
            if not source.exists():
                raise WorkflowException(f"{source} does not exist")
            collection = Collection(self.home)
            write_tree(collection, source.name, source)
            pdh = collection.save_new(f"{source.name} for archi run")["portable_data_hash"]
            self._uploaded[location] = keep_location(pdh, source.name)
            return self._uploaded[location]

    def final_output(self, outputs: dict[str, Any], name: str) -> dict[str, Any]:
        """The outputs (files, their secondary files, directories with everything below them)
        gathered into one collection at home (remote blocks copied home); their locations, and
        those of a directory's listing, rewritten into it."""
        found = find_objects(outputs, ("File", "Directory"),
                             lambda value: str(value.get("location", "")).startswith(PREFIX))
        if not found:
            return outputs
        final = Collection(self.home)
        used: set[str] = set()
        sources: dict[str, Collection] = {}
        for entry in found:
            pdh, path = split(entry["location"])
            target = entry.get("basename") or path.rsplit("/", 1)[-1] or pdh
            while target in used:
                target = f"_{target}"
            used.add(target)
            if pdh not in sources:  # (setdefault would fetch it every time)
                sources[pdh] = Collection(self.home, pdh)
            source = sources[pdh]
            if entry["class"] == "File":
                final.link(target, source.segments(path))
            else:
                _copy_directory(source, path, final, target)
            entry["_final"] = target
        record = final.save_new(name)
        for entry in found:
            old = entry["location"]
            entry["location"] = keep_location(record["portable_data_hash"], entry.pop("_final"))
            _relocate_listing(entry, old, entry["location"])
            for key in [k for k in entry if k == "path" or k.startswith("http://commonwl.org/cwltool#")]:
                entry.pop(key)
        outputs["_archi_output_collection"] = record["uuid"]
        return outputs

    # ---------------------------------------------------------------- the run
    def run(self, workflow: Path, job: Path | None) -> tuple[dict[str, Any], str]:
        loading = LoadingContext({"construct_tool_object": tool_factory(self), "relax_path_checks": True})
        tool = load_tool(document_uri(workflow), loading)
        self.check_static_targets(tool)
        self.workflow_name = self.workflow_name or workflow.name.partition("#")[0]
        job_order, basedir = self.prepare_inputs(tool, job)
        runtime = RuntimeContext()
        settings = {
            # paths as the containers see them; no image unless a tool asks for one (the cluster's runtime decides)
            "use_container": True, "default_container": "archipelago/host",
            "docker_outdir": OUTDIR, "docker_tmpdir": "/tmp", "docker_stagedir": "/var/lib/cwl",
            "move_outputs": "leave", "basedir": str(basedir), "compute_checksum": True,
            "make_fs_access": lambda basedir: KeepFsAccess(basedir, self.home),
        }
        for key, value in settings.items():
            setattr(runtime, key, value)
        self.follow_changes(self.home_id)
        try:
            # steps run at once where the workflow allows: they use the clusters' cores, not this
            # machine's, so the executor's own resource accounting must not hold them back
            executor = MultithreadedJobExecutor(max_parallel=PARALLEL_STEPS)
            executor.max_ram = 1 << 40
            result, status = executor(tool, job_order, runtime, logger=log)
            outputs: dict[str, Any] = dict(result or {})
        finally:
            self._stop.set()
            for reader in self._log_readers:
                reader.join()
        if outputs and status == "success":
            outputs = self.final_output(outputs, f"Output of {workflow.name}")
        return outputs, status

    def check_static_targets(self, tool: Any) -> None:
        """Unknown clusters named outright are errors before anything is submitted."""
        def walk(process: Any) -> None:
            for req in [*getattr(process, "requirements", []), *getattr(process, "hints", [])]:
                cluster = req.get("cluster_id") if req.get("class") == CLUSTER_TARGET else None
                if isinstance(cluster, str) and "$" not in cluster and cluster not in self.clusters:
                    raise RunError(f"arv:ClusterTarget names an unknown cluster {cluster!r} "
                                   f"(this federation: {', '.join(sorted(self.clusters))})")
            for step in getattr(process, "steps", []):
                walk(step)
                walk(step.embedded_tool)

        walk(tool)


def _copy_directory(source: Collection, path: str, final: Collection, target: str) -> None:
    """Everything below `path` in `source` (empty directories too) at `target` in `final`, by reference."""
    prefix = f"{path}/" if path else ""
    final.mkdir(target)
    for name, _ in source.files():
        if name.startswith(prefix):
            final.link(f"{target}/{name[len(prefix):]}", source.segments(name))
    for directory in source.directories():
        if directory.startswith(prefix):
            final.mkdir(f"{target}/{directory[len(prefix):]}")


def _relocate_listing(entry: dict[str, Any], old: str, new: str) -> None:
    """A directory's listing (and their listings), moved from under `old` to under `new`."""
    for child in entry.get("listing") or []:
        location = str(child.get("location", ""))
        if location.startswith(old + "/"):
            child["location"] = new + location[len(old):]
            child.pop("path", None)
        _relocate_listing(child, location, str(child.get("location", "")))


def document_uri(workflow: Path) -> str:
    """The URI cwltool loads `workflow` from: the file, and the `#fragment` naming one process of a
    packed document, if any."""
    path, hash_sign, fragment = str(workflow).partition("#")
    return Path(path).resolve().as_uri() + hash_sign + fragment


def download_outputs(client: ApiClient, outputs: dict[str, Any], outdir: Path) -> None:
    """Copy the output files from Keep into `outdir` and point their locations there (cwltool's
    --outdir), keeping each collection's layout; directories get their listing."""
    outdir.mkdir(parents=True, exist_ok=True)
    collections: dict[str, Collection] = {}  # outputs mostly share one collection: fetched once
    for value in find_objects(outputs, ("File", "Directory"),
                              lambda item: str(item.get("location", "")).startswith(PREFIX)):
        pdh, path = split(str(value["location"]))
        if pdh not in collections:
            collections[pdh] = Collection(client, pdh)
        collection = collections[pdh]
        if value["class"] == "File":
            names = [path]
        else:
            names = [name for name, _ in collection.files() if not path or name.startswith(f"{path}/")]
            for empty in collection.directories():
                if not path or empty.startswith(f"{path}/"):
                    (outdir / empty).mkdir(parents=True, exist_ok=True)
        for name in names:
            target = outdir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(collection.read(name))
        local = (outdir / path).resolve()
        if value["class"] == "Directory":
            local.mkdir(parents=True, exist_ok=True)
            value["listing"] = _listing(local)
        value["location"], value["path"] = local.as_uri(), str(local)


def _listing(directory: Path) -> list[dict[str, Any]]:
    """A directory's listing as cwltool writes it for outputs (files with sizes and checksums)."""
    entries: list[dict[str, Any]] = []
    for child in sorted(directory.iterdir()):
        if child.is_dir():
            entries.append({"class": "Directory", "basename": child.name, "location": child.resolve().as_uri(),
                            "path": str(child.resolve()), "listing": _listing(child)})
        else:
            data = child.read_bytes()
            entries.append({"class": "File", "basename": child.name, "location": child.resolve().as_uri(),
                            "path": str(child.resolve()), "size": len(data),
                            "checksum": f"sha1${hashlib.sha1(data).hexdigest()}"})
    return entries
