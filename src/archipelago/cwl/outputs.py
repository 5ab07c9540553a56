"""The run's outputs: gathered into one collection at home, by reference (an output that is an input
file, or a directory, reuses its blocks; only blocks held by other clusters are copied home when
it is saved), given their checksums, and with `--outdir` copied to a local directory as well."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cwltool.process import compute_checksums

from ..sdk.client import ApiClient
from ..sdk.collection import Collection
from .fsaccess import PREFIX, KeepCache, KeepFsAccess, keep_location, split
from .joborder import find_objects

CWLTOOL_KEYS = "http://commonwl.org/cwltool#"


def final_output(client: ApiClient, outputs: dict[str, Any], name: str,
                 known: dict[str, Collection] | None = None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The outputs (files, their secondary files, directories with everything below them) in one
    new collection at home, their locations (and those of a directory's listing) rewritten into it;
    and the (PDH, path) each came from. `known`: collections already read (steps' outputs)."""
    found = find_objects(outputs, ("File", "Directory"), lambda v: str(v.get("location", "")).startswith(PREFIX))
    if not found:
        return outputs, []
    final = Collection(client)
    used: set[str] = set()
    sources: dict[str, Collection] = dict(known or {})
    origins = []
    for entry in found:
        pdh, path = split(entry["location"])
        origins.append((pdh, path))
        target = entry.get("basename") or path.rsplit("/", 1)[-1] or pdh
        while target in used:
            target = f"_{target}"
        used.add(target)
        if pdh not in sources:
            sources[pdh] = Collection(client, pdh)
        source = sources[pdh]
        if entry["class"] == "File":
            final.link(target, source.segments(path))
        else:
            _link_directory(source, path, final, target)
        entry["_final"] = target
    _checksums(client, _files_without_checksum(found), sources)
    record = final.save_new(name)
    for entry in found:
        old = entry["location"]
        entry["location"] = keep_location(record["portable_data_hash"], entry.pop("_final"))
        _relocate_listing(entry, old, entry["location"])
        for key in [k for k in entry if k == "path" or k.startswith(CWLTOOL_KEYS)]:
            entry.pop(key)
    outputs["_archi_output_collection"] = record["uuid"]
    return outputs, origins


def _files_without_checksum(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every File among the outputs, their secondary files and directories' listings, with no checksum yet."""
    files: list[dict[str, Any]] = []

    def visit(entry: dict[str, Any]) -> None:
        if entry.get("class") == "File" and "checksum" not in entry and \
                str(entry.get("location", "")).startswith(PREFIX):
            files.append(entry)
        for child in [*(entry.get("secondaryFiles") or []), *(entry.get("listing") or [])]:
            if isinstance(child, dict):
                visit(child)

    for entry in found:
        visit(entry)
    return files


def _checksums(client: ApiClient, files: list[dict[str, Any]], known: dict[str, Collection]) -> None:
    """sha1 of each output file, as cwltool gives them (read where they are, a few at once)."""
    if not files:
        return
    access = KeepFsAccess("", client, KeepCache(collections=known))
    with ThreadPoolExecutor(min(8, len(files))) as pool:
        list(pool.map(lambda entry: compute_checksums(access, entry), files))


def _link_directory(source: Collection, path: str, final: Collection, target: str) -> None:
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
