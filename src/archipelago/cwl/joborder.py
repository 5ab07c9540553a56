"""The job order: read as cwltool reads it (locations made absolute, `format` expanded with the
namespaces of the job and the workflow, the secondary files the workflow's inputs declare found
beside their primaries), then its local files and literals uploaded once to the home cluster."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from cwltool.context import RuntimeContext
from cwltool.errors import WorkflowException
from cwltool.load_tool import jobloaderctx
from cwltool.process import Process, shortname
from cwltool.stdfsaccess import StdFsAccess
from schema_salad.exceptions import ValidationException
from schema_salad.fetcher import DefaultFetcher
from schema_salad.ref_resolver import Loader

from ..errors import ArchipelagoError
from ..sdk.client import ApiClient
from ..sdk.collection import Collection
from .fsaccess import PREFIX, keep_location


class RunError(ArchipelagoError):
    status = 422


JOB_REQUIREMENTS = "https://w3id.org/cwl/cwl#requirements"  # `cwl:requirements` of a job: cwltool applies them


class KeepAwareFetcher(DefaultFetcher):
    """Job documents may name files `keep:PDH/path`: a scheme, not an unknown namespace prefix."""

    def supported_schemes(self) -> list[str]:
        return [*super().supported_schemes(), "keep"]


def read_job_order(tool: Process, job: Path | None,
                   fs_access: Callable[[str], StdFsAccess] = StdFsAccess) -> tuple[dict[str, Any], Path]:
    """The job order of `job` (none: empty) for `tool`, and the directory its relative paths are in.
    `fs_access` finds secondary files (a Keep-aware one finds them beside keep: inputs too)."""
    basedir = (job.resolve().parent if job else Path.cwd())
    if job is None:
        return {}, basedir
    loader = Loader(dict(jobloaderctx), fetcher_constructor=KeepAwareFetcher)
    resolved, _ = loader.resolve_ref(str(job.resolve()), checklinks=False)
    loaded: Any = {} if resolved is None else resolved
    if not isinstance(loaded, dict):
        raise RunError(f"{job}: a job order is a mapping of input names to values, not {type(loaded).__name__}")
    declared: Any = tool.metadata.get("$namespaces", {})
    namespaces = {**loaded.get("$namespaces", {}), **declared}
    job_order = {(k if k == JOB_REQUIREMENTS else shortname(k)): v for k, v in loaded.items()
                 if not k.startswith("$") and k not in ("__id", "id", "cwl:tool", "https://w3id.org/cwl/cwl#tool")}
    expander = Loader(namespaces)
    for entry in find_objects(job_order, ("File",), lambda value: "format" in value):
        entry["format"] = expander.expand_url(entry["format"], "")
    return with_secondary_files(tool, job_order, basedir, fs_access), basedir


def with_secondary_files(tool: Process, job_order: dict[str, Any], basedir: Path,
                         fs_access: Callable[[str], StdFsAccess] = StdFsAccess) -> dict[str, Any]:
    """The job order validated against the tool's inputs, defaults filled in, and each local File
    given the secondary files its input declares that exist beside it (as cwltool does at the top
    level of a local run), so they are uploaded with it."""
    for parameter in tool.tool["inputs"]:  # defaults first, so `path` becomes `location` in them too
        if "default" in parameter and shortname(parameter["id"]) not in job_order:
            job_order[shortname(parameter["id"])] = copy.deepcopy(parameter["default"])
    for entry in find_objects(job_order, ("File", "Directory"), lambda value: "path" in value):
        entry.setdefault("location", entry.pop("path"))
    runtime = RuntimeContext({"basedir": str(basedir), "make_fs_access": fs_access, "toplevel": True})
    try:
        return dict(tool._init_job(job_order, runtime).job)
    except (WorkflowException, ValidationException) as exc:  # a person's mistake: said plainly, no traceback
        raise RunError(f"the job order does not fit the workflow's inputs: {exc}") from None


def upload_local_inputs(client: ApiClient, job_order: dict[str, Any], basedir: Path) -> dict[str, Any] | None:
    """Replace the job's local files, directories and literals by keep: locations in one new
    collection at home; returns its record (None when there was nothing local)."""
    def is_local(value: dict[str, Any]) -> bool:
        location = value.get("location") or value.get("path")
        return is_literal(value) or bool(location and not str(location).startswith(PREFIX))

    local = find_objects(job_order, ("File", "Directory"), is_local)
    if not local:
        return None
    collection = Collection(client)
    # each input in a directory of its own; its secondary files beside it, where tools look for them
    directories = {id(entry): str(n) for n, entry in enumerate(local)}
    for entry in local:
        for secondary in entry.get("secondaryFiles") or []:
            directories[id(secondary)] = directories[id(entry)]
    for entry in local:
        directory = directories[id(entry)]
        if is_literal(entry):  # written, not read
            name = entry.setdefault("basename", "literal")
            _write_literal(collection, f"{directory}/{name}", entry, basedir)
            continue
        source = local_source(entry, basedir)
        if not source.exists():
            raise RunError(f"input {source} does not exist")
        entry["_archi_target"] = target = f"{directory}/{entry.get('basename') or source.name}"
        write_tree(collection, target, source)
    record = collection.save_new("inputs for archi run")
    pdh: str = record["portable_data_hash"]

    def place(entry: dict[str, Any]) -> None:
        literal = is_literal(entry)
        entry["location"] = keep_location(pdh, entry.pop("_archi_target"))
        entry.pop("path", None)
        if not literal:
            entry.pop("listing", None)  # listed again, from Keep, as the tool's loadListing asks
        for child in entry.get("listing") or []:
            place(child)  # a directory literal's entries

    for entry in local:
        place(entry)
    return record


def is_literal(entry: dict[str, Any]) -> bool:
    """A File given by its contents or a Directory by its listing, with no location (or the blank
    node `_:…` cwltool gives such objects) to read it from."""
    location = str(entry.get("location") or entry.get("path") or "")
    if location and not location.startswith("_:"):
        return False
    return "contents" in entry if entry.get("class") == "File" else "listing" in entry


def _write_literal(collection: Collection, target: str, entry: dict[str, Any], basedir: Path) -> None:
    """A File literal's contents, or a Directory literal's listing (literals and local files) at `target`."""
    entry["_archi_target"] = target
    if entry.get("class") == "File":
        if is_literal(entry):
            collection.write(target, str(entry["contents"]).encode())
            return
        source = local_source(entry, basedir)
        if not source.is_file():
            raise RunError(f"{target}: a directory literal may hold file literals and local files; "
                           f"{source} is neither")
        collection.write(target, source.read_bytes())
        return
    for child in entry.get("listing") or []:
        name = child.get("basename") or local_source(child, basedir).name
        child["basename"] = name
        _write_literal(collection, f"{target}/{name}", child, basedir)


def find_objects(value: Any, classes: tuple[str, ...],
                 wanted: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The File/Directory objects (of `classes`) in a CWL value for which wanted(obj) holds, and
    those among their secondary files; not looking into the listings of those it finds."""
    found: list[dict[str, Any]] = []

    def visit(item: Any) -> None:
        if isinstance(item, dict):
            if item.get("class") in classes and wanted(item):
                found.append(item)
                visit(item.get("secondaryFiles") or [])
                return
            for child in item.values():
                visit(child)
        elif isinstance(item, list):
            for child in item:
                visit(child)

    visit(value)
    return found


def write_tree(collection: Collection, target: str, source: Path) -> None:
    """A local file, or a directory with everything below it, written at `target` in the collection."""
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for path in files:
        with open(path, "rb") as handle:
            collection.write(target if path == source else f"{target}/{path.relative_to(source)}", handle)


def local_path(location: str, basedir: Path) -> Path:
    """A local file's path from its location: a URI, absolute or relative to `basedir`, URL-quoted."""
    if location.startswith("file://"):
        return Path(unquote(urlsplit(location).path))
    return _path(unquote(location), basedir)


def local_source(entry: dict[str, Any], basedir: Path) -> Path:
    """The local file a File or Directory object names by location (a URI) or by path."""
    if entry.get("location"):
        return local_path(str(entry["location"]), basedir)
    return _path(str(entry.get("path") or ""), basedir)


def _path(path: str, basedir: Path) -> Path:
    return Path(path) if Path(path).is_absolute() else basedir / path
