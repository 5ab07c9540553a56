"""The job order: read as cwltool reads it (locations made absolute, `format` expanded with the
namespaces of the job and the workflow, the secondary files the workflow's inputs declare found
beside their primaries), then its local files and literals uploaded once to the home cluster."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from cwltool.context import RuntimeContext
from cwltool.errors import WorkflowException
from cwltool.load_tool import jobloaderctx
from cwltool.process import Process, shortname
from cwltool.stdfsaccess import StdFsAccess
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from schema_salad.exceptions import SchemaSaladException, ValidationException
from schema_salad.fetcher import DefaultFetcher
from schema_salad.ref_resolver import Loader

from ..errors import ArchipelagoError
from ..formats.manifest import portable_data_hash, render
from ..keep.writer import ManifestWriter
from ..sdk.client import ApiClient
from ..sdk.collection import Collection
from .errors import RunError, describe
from .fsaccess import PREFIX, keep_location

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
    try:
        text = job.read_text()
    except OSError as exc:
        raise RunError(f"{job}: {exc.strerror}") from None
    try:
        try:  # JSON, parsed as such: a YAML parser takes seconds over a thousand records
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            resolved, _ = loader.resolve_all(_commented(data), job.resolve().as_uri(), checklinks=False)
        else:
            resolved, _ = loader.resolve_ref(str(job.resolve()), checklinks=False)
    except SchemaSaladException as exc:
        raise RunError(describe(exc)) from None
    # plain dicts and lists: cwltool copies the job order, and a copy of ruamel's maps, which keep
    # their line numbers, grows with the square of the records
    loaded: Any = {} if resolved is None else _plain(resolved)
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


def _commented(value: Any) -> Any:
    if isinstance(value, dict):
        return CommentedMap((k, _commented(v)) for k, v in value.items())
    if isinstance(value, list):
        return CommentedSeq([_commented(v) for v in value])
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


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


class _Hashed:
    """Where local inputs would go, hashed and stored nowhere: the manifest their upload would make."""

    def __init__(self) -> None:
        self.writer = ManifestWriter()

    def write(self, path: str, source: bytes | BinaryIO) -> None:
        self.writer.write_file(path, source)

    def portable_data_hash(self) -> str:
        return portable_data_hash(render(self.writer.finish_tree()))


PREHASH_LIMIT = 64 << 20  # local inputs up to this size are hashed first: an earlier upload of them is reused


def upload_local_inputs(client: ApiClient, job_order: dict[str, Any], basedir: Path) -> dict[str, Any] | None:
    """Replace the job's local files, directories and literals by keep: locations in one collection
    at home — one the user already has with the same content (an earlier run's), else a new one;
    returns its record (None when there was nothing local)."""
    def is_local(value: dict[str, Any]) -> bool:
        location = value.get("location") or value.get("path")
        return is_literal(value) or bool(location and not str(location).startswith(PREFIX))

    local = find_objects(job_order, ("File", "Directory"), is_local)
    if not local:
        return None
    record = None
    if _local_size(local, basedir) <= PREHASH_LIMIT:
        hashed = _Hashed()
        _lay_out(hashed, local, basedir)
        try:
            record = client.collections.get(hashed.portable_data_hash())
        except ArchipelagoError:
            record = None
    if record is None:
        collection = Collection(client)
        _lay_out(collection, local, basedir)
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


def _local_size(local: list[dict[str, Any]], basedir: Path) -> int:
    total = 0
    for entry in local:
        if not is_literal(entry) and (source := local_source(entry, basedir)).exists():
            total += source.stat().st_size if source.is_file() else \
                sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    return total


def _lay_out(collection: Any, local: list[dict[str, Any]], basedir: Path) -> None:
    """The local inputs written into `collection` (anything with `write(path, source)`): each in a
    directory of its own, its secondary files beside it, where tools look for them."""
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


def is_literal(entry: dict[str, Any]) -> bool:
    """A File given by its contents or a Directory by its listing, with no location (or the blank
    node `_:…` cwltool gives such objects) to read it from."""
    location = str(entry.get("location") or entry.get("path") or "")
    if location and not location.startswith("_:"):
        return False
    return "contents" in entry if entry.get("class") == "File" else "listing" in entry


def _write_literal(collection: Any, target: str, entry: dict[str, Any], basedir: Path) -> None:
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


def write_tree(collection: Any, target: str, source: Path) -> None:
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
