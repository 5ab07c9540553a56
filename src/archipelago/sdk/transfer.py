"""Whole-collection transfers for the CLI, the demo and scripts: directories in, directories out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..formats.manifest import parse
from ..keep.transfer import ResumeCache, UploadPlan, download, plan_upload, upload
from .client import ApiClient

Progress = Callable[[int], None]


def put_paths(client: ApiClient, paths: list[Path], name: str | None = None, project: str | None = None,
              replicas: int | None = None, progress: Progress | None = None,
              plan: UploadPlan | None = None, resume: bool = False) -> dict[str, Any]:
    """Upload files and directories into a new collection; returns its record.

    With resume, an interrupted run of the same upload (same paths, cluster, token and project)
    is continued: files it had stored are not sent again.
    """
    plan = plan or plan_upload(paths)
    cache = ResumeCache.for_upload(paths, f"{client.base} {project or ''}", client.token) if resume else None
    manifest_text = upload(client.keep(replicas=replicas or 1, cache=None), plan, progress, cache)
    attrs: dict[str, Any] = {"manifest_text": manifest_text, "name": name or Path(paths[0]).resolve().name}
    if project:
        attrs["owner_uuid"] = project
    record = client.collections.create(attrs, ensure_unique_name=True)
    if cache is not None:
        cache.clear()
    return record


def collection_size(record: dict[str, Any], subpath: str = "") -> int:
    tree = parse(record["manifest_text"]).tree()
    prefix = "./" + subpath.strip("/") if subpath.strip("/") else "."
    return sum(s[2] for d, files in tree.items() for name, segs in files.items() for s in segs
               if prefix == "." or f"{d}/{name}" == prefix or f"{d}/{name}".startswith(prefix + "/"))


def get_collection(client: ApiClient, record: dict[str, Any], dest: Path, subpath: str = "",
                   progress: Progress | None = None) -> int:
    """Download a collection (or the part under `subpath`) into `dest`; returns bytes written."""
    return download(client.keep(cache=None), record["manifest_text"], dest, progress, subpath)
