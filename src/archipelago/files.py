"""Writing files that hold secrets (tokens, keys, configuration with both)."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: str | bytes) -> None:
    """`data` at `path`, readable by its owner only from the first byte, and whole or not at all
    (written beside it, then renamed over it)."""
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        os.chmod(temp, 0o600)  # an older temp file may have had other bits
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
