"""The fields of a container request, checked before anything is stored or run.

Arvados refuses each of these with 422 (services/api/app/models/container_request.rb: validate_datatypes,
validate_runtime_constraints, validate_scheduling_parameters). A value that slipped through would fail
later, in the dispatcher or the executor, where one bad request must not stop everyone's work; and a
mount target or a path that is not normalised is a way out of the places a container may write.

Pure functions: values in, an Unprocessable naming the field and the rule out. `check_fields` runs on
every create and update (each field on its own); `check_committable` on the whole request when it is
committed (the rules across fields: what must be there, the output path is mounted, stdout is inside it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import Unprocessable
from ..ids import INFIX, PDH_RE

EMPTY_PDH = "d41d8cd98f00b204e9800998ecf8427e+0"
COLLECTION_UUID_RE = re.compile(rf"[a-z0-9]{{5}}-{INFIX['Collection']}-[a-z0-9]{{15}}")
STREAMS = ("stdin", "stdout", "stderr")
# what each kind of mount may say (Arvados' MountKindFields); a Go client sends every field, so a
# field of another kind is accepted when it is empty (0, "", false, null), as Arvados accepts it
MOUNT_FIELDS: dict[str, frozenset[str]] = {
    "collection": frozenset({"uuid", "portable_data_hash", "writable", "path", "exclude_from_output"}),
    "tmp": frozenset({"capacity", "device_type", "exclude_from_output"}),
    "keep": frozenset({"exclude_from_output"}),
    "file": frozenset({"path", "exclude_from_output"}),
    "json": frozenset({"content", "exclude_from_output"}),
    "text": frozenset({"content", "exclude_from_output"}),
}
SECRET_MOUNT_KINDS = ("json", "text")  # a secret is content; a collection is not a secret (and not judged)
DEVICE_TYPES = ("ram", "ssd", "disk", "network", "")
RUNTIME_CONSTRAINTS = frozenset({"API", "gpu", "cuda", "keep_cache_disk", "keep_cache_ram", "ram", "vcpus"})
SCHEDULING_PARAMETERS = frozenset({"max_run_time", "partitions", "preemptible", "supervisor"})
GPU_FIELDS = frozenset({"device_count", "driver_version", "hardware_target", "stack", "vram"})
CUDA_FIELDS = frozenset({"device_count", "driver_version", "hardware_capability"})
MAX_SIZE = (1 << 63) - 1  # bytes and cores: what every consumer (Slurm, Go tools) can hold
MAX_COLUMN = (1 << 31) - 1  # stored in 32-bit columns; seconds from now that a timestamp can still hold


def shown(value: Any) -> str:
    """A value as the client sent it (JSON), short enough for an error message."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def refuse(field: str, rule: str, value: Any) -> Unprocessable:
    return Unprocessable(f"{field} must be {rule}, not {shown(value)}")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(field: str, value: Any, low: int, high: int, what: str) -> None:
    if not is_int(value) or not low <= value <= high:
        raise refuse(field, what, value)


def check_bool(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise refuse(field, "true or false", value)


def check_string(field: str, value: Any) -> None:
    if not isinstance(value, str) or "\0" in value:
        raise refuse(field, "a string (without NUL)", value)


def check_strings(field: str, value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) and "\0" not in item for item in value):
        raise refuse(field, "a list of strings", value)


def check_object(field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise refuse(field, "an object", value)
    return value


def path_problem(path: str) -> str | None:
    """Why `path` is not an absolute, normalised path (None if it is): one that names exactly one
    place, so that no mount or output can be steered outside where it claims to be."""
    if "\0" in path:
        return "without NUL"
    if not path.startswith("/"):
        return "an absolute path"
    if any(part in ("", ".", "..") for part in path[1:].split("/")):
        return "a normalised absolute path (no empty, '.' or '..' parts, no trailing '/')"
    return None


def check_absolute(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise refuse(field, "an absolute path", value)
    if (problem := path_problem(value)) is not None:
        raise refuse(field, problem, value)
    return value


def below(path: str, directory: str) -> bool:
    """Is `path` strictly inside `directory` (both normalised)?"""
    return path.startswith(directory + "/")


def at_or_below(path: str, directory: str) -> bool:
    return path == directory or below(path, directory)


# ---------------------------------------------------------------- one field at a time
def check_command(value: Any) -> None:
    check_strings("command", value)


def check_environment(value: Any) -> None:
    for key, item in check_object("environment", value).items():
        if not key or "=" in key or "\0" in key:
            raise refuse("environment", "an object whose names are not empty and have no '=' or NUL", key)
        check_string(f"environment.{key}", item)


def check_output_path(value: Any) -> None:
    if value is not None:
        check_absolute("output_path", value)


def check_mounts(value: Any, field: str = "mounts") -> None:
    for target, mount in check_object(field, value).items():
        check_mount(field, target, mount, secret=field == "secret_mounts")


def check_secret_mounts(value: Any) -> None:
    check_mounts(value, "secret_mounts")


def check_mount(parent: str, target: str, mount: Any, secret: bool = False) -> None:
    streams = ("stdin",) if secret else STREAMS
    if target not in streams and (problem := path_problem(target)) is not None:
        raise refuse(f"a target of {parent}", f"{', '.join(streams)} or {problem}", target)
    field = f"{parent}.{target}"
    spec = check_object(field, mount)
    kind = spec.get("kind")
    kinds = SECRET_MOUNT_KINDS if secret else tuple(MOUNT_FIELDS)
    if kind not in kinds:
        raise refuse(f"{field}.kind", f"one of {', '.join(kinds)}", kind)
    for key, item in spec.items():
        if key != "kind" and key not in MOUNT_FIELDS[kind] and item not in (0, "", False, None):
            raise Unprocessable(f"{field}.{key}: a {kind} mount has no {key}")
    check_stream(field, target, kind, spec)
    MOUNT_CHECKS[kind](field, spec)
    for key in ("writable", "exclude_from_output"):
        if spec.get(key) is not None:
            check_bool(f"{field}.{key}", spec[key])


def check_stream(field: str, target: str, kind: str, spec: dict[str, Any]) -> None:
    """What the executor can connect to a standard stream: stdin reads a file of a collection (or
    json/text content); stdout and stderr are written to a file in the output (checked at commit)."""
    if target == "stdin" and not (kind in ("json", "text") or (kind == "collection" and spec.get("path"))):
        raise Unprocessable(f"{field} must be a collection mount with a path (a file), or a json or text mount")
    if target in ("stdout", "stderr") and kind != "file":
        raise refuse(f"{field}.kind", "file", kind)
    if kind == "file" and target not in ("stdout", "stderr"):
        raise Unprocessable(f"{field}: a file mount is only for stdout and stderr")


def check_collection_mount(field: str, spec: dict[str, Any]) -> None:
    pdh, uuid = spec.get("portable_data_hash"), spec.get("uuid")  # "" is unset, as Go clients send it
    if pdh not in (None, "") and not (isinstance(pdh, str) and PDH_RE.fullmatch(pdh)):
        raise refuse(f"{field}.portable_data_hash", "a portable data hash (md5+size)", pdh)
    if uuid not in (None, "") and not (isinstance(uuid, str) and COLLECTION_UUID_RE.fullmatch(uuid)):
        raise refuse(f"{field}.uuid", "a collection UUID", uuid)
    if not pdh and not uuid and not spec.get("writable"):
        raise Unprocessable(f"{field}: a collection mount needs a portable_data_hash or a uuid "
                            "(or writable: true, for a new, empty collection)")
    if spec.get("path") is not None:
        check_inner_path(f"{field}.path", spec["path"])


def check_inner_path(field: str, value: Any) -> None:
    """A path inside a collection: relative (a leading '/' is allowed, as Arvados' documents show it),
    and never '..': it must stay in the collection."""
    if not isinstance(value, str) or "\0" in value:
        raise refuse(field, "a path inside the collection", value)
    inner = value[1:] if value.startswith("/") else value
    if inner in ("", "."):
        return
    if any(part in ("", ".", "..") for part in inner.split("/")):
        raise refuse(field, "a normalised path inside the collection (no empty, '.' or '..' parts)", value)


def check_tmp_mount(field: str, spec: dict[str, Any]) -> None:
    if spec.get("capacity") is not None:
        check_int(f"{field}.capacity", spec["capacity"], 0, MAX_SIZE, "a non-negative integer (bytes)")
    if spec.get("device_type") is not None and spec["device_type"] not in DEVICE_TYPES:
        raise refuse(f"{field}.device_type", f"one of {', '.join(repr(d) for d in DEVICE_TYPES)}",
                     spec["device_type"])


def check_file_mount(field: str, spec: dict[str, Any]) -> None:
    check_absolute(f"{field}.path", spec.get("path"))


def check_text_mount(field: str, spec: dict[str, Any]) -> None:
    if spec.get("content") is not None and not isinstance(spec["content"], str):
        raise refuse(f"{field}.content", "a string", spec["content"])


MOUNT_CHECKS: dict[str, Callable[[str, dict[str, Any]], None]] = {
    "collection": check_collection_mount, "tmp": check_tmp_mount, "file": check_file_mount,
    "text": check_text_mount, "json": lambda field, spec: None, "keep": lambda field, spec: None,
}


def check_runtime_constraints(value: Any) -> None:
    constraints = check_object("runtime_constraints", value)
    if unknown := sorted(set(constraints) - RUNTIME_CONSTRAINTS):
        # Arvados refuses them too: a misspelt "rma" would otherwise run with the default RAM
        raise Unprocessable(f"runtime_constraints: unknown {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(RUNTIME_CONSTRAINTS))})")
    for key, what in (("ram", "a positive integer (bytes)"), ("vcpus", "a positive integer (cores)")):
        if key in constraints:
            check_int(f"runtime_constraints.{key}", constraints[key], 1, MAX_SIZE, what)
    for key in ("keep_cache_ram", "keep_cache_disk"):
        if constraints.get(key) is not None:
            check_int(f"runtime_constraints.{key}", constraints[key], 0, MAX_SIZE, "a non-negative integer (bytes)")
    if constraints.get("API") is not None:
        check_bool("runtime_constraints.API", constraints["API"])
    for key, fields in (("gpu", GPU_FIELDS), ("cuda", CUDA_FIELDS)):
        if constraints.get(key) is not None:
            check_device(f"runtime_constraints.{key}", constraints[key], fields)


def check_device(field: str, value: Any, fields: frozenset[str]) -> None:
    device = check_object(field, value)
    if unknown := sorted(set(device) - fields):
        raise Unprocessable(f"{field}: unknown {', '.join(unknown)}")
    for key in ("device_count", "vram"):
        if device.get(key) is not None:
            check_int(f"{field}.{key}", device[key], 0, MAX_SIZE, "a non-negative integer")
    for key in ("driver_version", "hardware_capability", "stack"):
        if device.get(key) is not None:
            check_string(f"{field}.{key}", device[key])
    if device.get("hardware_target") is not None:
        check_strings(f"{field}.hardware_target", device["hardware_target"])


def check_scheduling_parameters(value: Any) -> None:
    parameters = check_object("scheduling_parameters", value)
    if unknown := sorted(set(parameters) - SCHEDULING_PARAMETERS):
        raise Unprocessable(f"scheduling_parameters: unknown {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(SCHEDULING_PARAMETERS))})")
    if parameters.get("max_run_time") is not None:
        check_int("scheduling_parameters.max_run_time", parameters["max_run_time"], 0, MAX_COLUMN,
                  f"a non-negative integer (seconds, at most {MAX_COLUMN})")
    if parameters.get("partitions") is not None:
        check_strings("scheduling_parameters.partitions", parameters["partitions"])
    for key in ("preemptible", "supervisor"):
        if parameters.get(key) is not None:
            check_bool(f"scheduling_parameters.{key}", parameters[key])


def text_field(field: str) -> Callable[[Any], None]:
    """A plain string field: never NUL, which PostgreSQL cannot store (it answered 500)."""
    return lambda value: check_string(field, value)


FIELD_CHECKS: dict[str, Callable[[Any], None]] = {
    **{field: text_field(field) for field in ("name", "description", "container_image", "output_name", "cwd",
                                              "runtime_token")},
    "command": check_command,
    "environment": check_environment,
    "output_path": check_output_path,
    "output_glob": lambda value: check_strings("output_glob", value),
    "output_storage_classes": lambda value: check_strings("output_storage_classes", value),
    "mounts": check_mounts,
    "secret_mounts": check_secret_mounts,
    "runtime_constraints": check_runtime_constraints,
    "scheduling_parameters": check_scheduling_parameters,
    "container_count_max": lambda value: check_int("container_count_max", value, 1, MAX_COLUMN,
                                                   "a positive integer"),
    "priority": lambda value: check_int("priority", value, 0, 1000, "an integer from 0 to 1000"),
    "output_ttl": lambda value: check_int("output_ttl", value, 0, MAX_COLUMN, "a non-negative integer (seconds)"),
}


def check_fields(attrs: Mapping[str, Any]) -> None:
    """Each field a client sends, on its own (null is left to the caller: it means the default)."""
    for key, value in attrs.items():
        if value is not None and (check := FIELD_CHECKS.get(key)) is not None:
            check(value)


# ---------------------------------------------------------------- the whole request, at commit
def check_committable(spec: Mapping[str, Any]) -> None:
    """The rules across fields a request must meet to run (each field already passed check_fields)."""
    if not spec.get("command"):
        raise Unprocessable("a committed container request needs a command (a non-empty list of strings)")
    output_path = spec.get("output_path")
    if not output_path:
        raise Unprocessable("a committed container request needs an output_path")
    mounts: dict[str, Any] = spec.get("mounts") or {}
    targets = [t for t in mounts if t not in STREAMS]
    if not any(at_or_below(output_path, target) for target in targets):
        # Arvados requires it too: the output is what the container wrote in a mount of its own
        raise Unprocessable(f"output_path {shown(output_path)} must be a mount target or inside one "
                            f"(mounted: {', '.join(sorted(targets)) or 'nothing'})")
    for stream in ("stdout", "stderr"):
        if stream in mounts and not below(mounts[stream]["path"], output_path):
            raise Unprocessable(f"mounts.{stream}.path {shown(mounts[stream]['path'])} must be inside "
                                f"output_path {shown(output_path)}")
    if clash := sorted(set(spec.get("secret_mounts") or {}) & set(mounts)):
        raise Unprocessable(f"secret_mounts and mounts both mount {', '.join(clash)}")
