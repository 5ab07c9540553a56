"""Which containers are equal (Arvados' `find_reusable`): the same command, cwd, environment,
output path and glob, image PDH, mounts with collections pinned to their PDH, secret mounts and
runtime constraints after resolution. Equality is one md5 over a canonical JSON of those."""

from __future__ import annotations

import hashlib
import json
from typing import Any

DEFAULT_KEEP_CACHE_RAM = 256 << 20


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def md5_of(value: Any) -> str:
    return hashlib.md5(canonical(value).encode()).hexdigest()


def resolve_constraints(constraints: dict[str, Any]) -> dict[str, Any]:
    """As the container will have them: a range takes its first value, defaults filled in."""
    resolved = {k: (v[0] if isinstance(v, list) and v and k in ("ram", "vcpus") else v)
                for k, v in constraints.items()}
    resolved.setdefault("vcpus", 1)
    resolved.setdefault("ram", 256 << 20)
    if not resolved.get("keep_cache_ram"):
        resolved["keep_cache_ram"] = DEFAULT_KEEP_CACHE_RAM
    resolved.setdefault("API", False)
    if "cuda" in resolved and "gpu" not in resolved:
        resolved["gpu"] = resolved.pop("cuda")
    return resolved


def reuse_key(container: dict[str, Any]) -> str:
    return md5_of({
        "command": container["command"], "cwd": container["cwd"], "environment": container["environment"],
        "output_path": container["output_path"], "output_glob": container["output_glob"],
        "container_image": container["container_image"], "mounts": container["mounts"],
        "secret_mounts": md5_of(container.get("secret_mounts") or {}),
        "runtime_constraints": container["runtime_constraints"],
    })
