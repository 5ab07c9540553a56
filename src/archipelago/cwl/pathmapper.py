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

    def collections(self) -> set[str]:
        """The PDHs this step's files live in (each becomes a mount)."""
        return {split(entry.resolved)[0] for entry in self._pathmap.values() if entry.resolved.startswith(PREFIX)}
