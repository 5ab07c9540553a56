"""Directory <-> Keep: upload files into packed blocks, download a manifest's files back.

Both sides move whole blocks in parallel through KeepClient; each block is fetched once even
when many small files share it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .client import KeepClient
from .manifest import parse

Progress = Callable[[int], None]


@dataclass
class UploadPlan:
    files: list[tuple[Path, str]]  # (source path, path inside the collection)
    directories: list[str]  # empty directories to keep
    total_bytes: int


def plan_upload(paths: Iterable[Path]) -> UploadPlan:
    """Every regular file under `paths`, named relative to the path given (a file keeps its name)."""
    files: list[tuple[Path, str]] = []
    directories: list[str] = []
    for root in map(Path, paths):
        if root.is_file():
            files.append((root, root.name))
            continue
        if not root.is_dir():
            raise FileNotFoundError(f"no such file or directory: {root}")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = Path(dirpath).relative_to(root)
            if not dirnames and not filenames and rel != Path("."):
                directories.append(rel.as_posix())
            for name in sorted(filenames):
                files.append((Path(dirpath) / name, (rel / name).as_posix()))
    return UploadPlan(files, directories, sum(src.stat().st_size for src, _ in files))


def upload(client: KeepClient, plan: UploadPlan, progress: Progress | None = None) -> str:
    """Store the planned files; returns the normalized, signed manifest."""
    from .writer import ManifestWriter

    uploader = client.uploader()
    writer = ManifestWriter(uploader.submit)
    try:
        for source, name in plan.files:
            with open(source, "rb") as handle:
                writer.write_file(name, handle, progress)
        for directory in plan.directories:
            writer.add_directory(directory)
        return writer.finish()
    finally:
        uploader.close()


def download(client: KeepClient, manifest_text: str, dest: Path, progress: Progress | None = None,
             subpath: str = "") -> int:
    """Write the manifest's files (those under `subpath`) below `dest`; returns bytes written."""
    tree = parse(manifest_text).tree()
    prefix = "./" + subpath.strip("/") if subpath.strip("/") else "."
    # locator -> [(file path, file offset, block offset, length)]
    uses: dict[str, list[tuple[Path, int, int, int]]] = {}
    dest = Path(dest)
    matched = False
    for dirname, files in tree.items():
        for name, segments in files.items():
            full = f"{dirname}/{name}"
            if prefix != "." and not (full == prefix or full.startswith(prefix + "/") or dirname == prefix):
                continue
            matched = True
            rel = full[len(prefix) + 1 :] if full != prefix else name
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as handle:
                handle.truncate(sum(length for _, _, length in segments))
            position = 0
            for locator, offset, length in segments:
                uses.setdefault(locator, []).append((target, position, offset, length))
                position += length
        if not files and (prefix == "." or dirname.startswith(prefix)):
            matched = True
            (dest / dirname[len(prefix) + 1 :]).mkdir(parents=True, exist_ok=True)
    if not matched:
        raise FileNotFoundError(f"{subpath!r} is not in the collection")
    written = 0
    for locator, data in zip(uses, client.stream_blocks(uses), strict=True):
        for target, position, offset, length in uses[locator]:
            with open(target, "r+b") as handle:
                handle.seek(position)
                handle.write(data[offset : offset + length])
            written += length
            if progress:
                progress(length)
    return written
