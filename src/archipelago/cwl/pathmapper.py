"""Where a step's input files are inside its container: `keep:<PDH>/path` at `/keep/<PDH>/path`,
each collection mounted there (read on demand, from whichever cluster holds it)."""

from __future__ import annotations

import posixpath
from typing import Any

from cwltool.errors import UnsupportedRequirement
from cwltool.pathmapper import MapperEnt, PathMapper

from .fsaccess import PREFIX, split

KEEP_ROOT = "/keep"


def container_path(location: str) -> str:
    pdh, path = split(location)
    return f"{KEEP_ROOT}/{pdh}/{path}" if path else f"{KEEP_ROOT}/{pdh}"


def _in_place(obj: dict[str, Any]) -> bool:
    """Whether a File can be used at its /keep path: its name there is its basename, and its
    secondary files sit beside it under their basenames (as tools look for them)."""
    directory, _, name = split(obj["location"])[1].rpartition("/")
    if obj.get("basename", name) != name:
        return False
    for secondary in obj.get("secondaryFiles") or []:
        location = str(secondary.get("location", ""))
        if not location.startswith(PREFIX):
            return False
        pdh, path = split(location)
        if pdh != split(obj["location"])[0] or path != posixpath.join(directory, secondary.get("basename", "")):
            return False
    return True


class KeepPathMapper(PathMapper):
    upload: Any = None  # (local location) -> keep: location, for files the documents themselves name

    def visit(self, obj, stagedir, basedir, copy=False, staged=False):
        location = obj["location"]
        if location in self._pathmap:
            return
        if location.startswith("file://") and self.upload is not None:  # a default in a tool, say
            kept = self.upload(location)
            kind = "Directory" if obj.get("class") == "Directory" else "File"
            self._pathmap[location] = MapperEnt(kept, container_path(kept), kind, True)
            return
        if location.startswith(PREFIX):
            kind = "Directory" if obj.get("class") == "Directory" else "File"
            if not _in_place(obj):  # renamed, or secondary files elsewhere: put together under stagedir
                self._pathmap[location] = MapperEnt(location, posixpath.join(stagedir, obj["basename"]), kind, True)
                for secondary in obj.get("secondaryFiles") or []:
                    self._pathmap[secondary["location"]] = MapperEnt(
                        secondary["location"], posixpath.join(stagedir, secondary["basename"]),
                        "Directory" if secondary.get("class") == "Directory" else "File", True)
                return
            self._pathmap[location] = MapperEnt(location, container_path(location), kind, True)
            for child in [*(obj.get("secondaryFiles") or []), *(obj.get("listing") or [])]:
                self.visit(child, stagedir, basedir, copy, staged)  # a listing's entries: inside its mount
            return
        if location.startswith("_:"):  # a literal: written into the container at its path
            target = posixpath.join(obj.get("dirname") or stagedir, obj["basename"])
            kind = "CreateWritableFile" if copy else "CreateFile"
            self._pathmap[location] = MapperEnt(str(obj.get("contents", "")), target, kind, True)
            return
        raise UnsupportedRequirement(f"{location}: inputs must be in Keep (keep:...); archi run uploads local files")

    def literals(self) -> dict[str, str]:
        """Files the workflow writes itself: container path -> contents."""
        return {entry.target: entry.resolved for entry in self._pathmap.values()
                if entry.type and entry.type.startswith("Create")}

    def placed(self) -> dict[str, str]:
        """Files and directories put at a path of their own (not at their /keep path): container
        path -> keep: location."""
        return {entry.target: entry.resolved for entry in self._pathmap.values()
                if entry.resolved.startswith(PREFIX) and not entry.target.startswith(KEEP_ROOT + "/")}

    def collections(self) -> set[str]:
        """The PDHs this step's files live in (each becomes a mount)."""
        return {split(entry.resolved)[0] for entry in self._pathmap.values() if entry.resolved.startswith(PREFIX)}
