"""How much disk a container may fill. Its output directory and tmp mounts are directories on this
host, on whatever filesystem `containers.work_dir` is (by default the one the cluster's database and
Keep may share): the executor measures them while the command runs and stops a container that
writes more than `containers.max_disk`, or that brings the filesystem under `containers.min_free_disk`.
(Declared `capacity` is what a request asks to have, as in CWL and Arvados, not a ceiling.)"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def usage(directory: Path) -> int:
    """Bytes the files below `directory` occupy, never following a link."""
    total = 0
    stack = [str(directory)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue  # gone, or a FUSE view: not the container's disk
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            total += info.st_blocks * 512
            if entry.is_dir(follow_symlinks=False) and not os.path.ismount(entry.path):
                stack.append(entry.path)
    return total


class DiskGuard:
    def __init__(self, directories: list[Path], max_bytes: int, min_free: int):
        self.directories, self.max_bytes, self.min_free = directories, max_bytes, min_free

    def describe(self) -> str:
        cap = f"at most {self.max_bytes} bytes written" if self.max_bytes else "no cap on what it writes"
        return f"disk: {cap}; stopped if the work directory's filesystem has less than {self.min_free} bytes free"

    def problem(self) -> str | None:
        """Why the container must stop now, if it must."""
        if self.min_free and self.directories and shutil.disk_usage(self.directories[0]).free < self.min_free:
            return f"the work directory's filesystem has less than {self.min_free} bytes free"
        if self.max_bytes and (used := sum(usage(d) for d in self.directories)) > self.max_bytes:
            return f"it wrote {used} bytes to its output and tmp mounts, more than this cluster's {self.max_bytes}"
        return None
