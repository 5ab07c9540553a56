"""A change signal for the processes that share one database on one host.

Each API process caches validated tokens and permission snapshots. When one process commits a
change that affects them (a revoked token, a new sharing link), the others must drop theirs at
once, not when their cache expires. The signal is a file that every such commit appends one byte
to: appends are atomic and the size only grows, so a reader that sees a new size knows that
something changed since it last looked (a stat per request, about a microsecond). Processes on
other hosts (PostgreSQL shared across machines) would need LISTEN/NOTIFY instead; for them the
caches' own expiry bounds staleness.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

from ..files import exclusive_directory


def signal_path(database_url: str, cluster_id: str) -> Path:
    """Beside a SQLite file; for a server database, one file per database on this host."""
    if database_url.startswith("sqlite:///") and database_url != "sqlite:///:memory:":
        return Path(database_url[len("sqlite:///"):] + ".changes")
    digest = hashlib.md5(database_url.encode()).hexdigest()[:12]
    return exclusive_directory(Path(tempfile.gettempdir()) / f"archipelago-{os.geteuid()}") / \
        f"{cluster_id}-{digest}.changes"


class ChangeSignal:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._seen = self._size()

    def _size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0

    def bump(self) -> None:
        """Tell every process (this one included) that something changed."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b".")
        finally:
            os.close(fd)

    def version(self) -> int:
        """Grows with every bump (by any process): equal versions, nothing bumped in between."""
        return self._size()

    def changed(self) -> bool:
        """Has anyone bumped the signal since this process last asked?"""
        size = self._size()
        with self._lock:
            if size == self._seen:
                return False
            self._seen = size
            return True
