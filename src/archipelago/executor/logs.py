"""A container's log files, every line timestamped as crunch-run writes them: crunch-run.txt,
stdout.txt, stderr.txt, node.json."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO


def stamp() -> str:
    """RFC 3339 with nanoseconds, as crunch-run writes them."""
    now = time.time_ns()
    return datetime.fromtimestamp(now // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + \
        f".{now % 1_000_000_000:09d}Z"


class Logs:
    """The container's log files, every line timestamped."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, name: str, line: str) -> None:
        with self._lock, open(self.directory / name, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp()} {line.rstrip(chr(10))}\n")

    def crunch_run(self, message: str) -> None:
        self.write("crunch-run.txt", message)

    def follow(self, stream: IO[bytes], name: str) -> threading.Thread:
        def pump() -> None:
            for raw in iter(stream.readline, b""):
                self.write(name, raw.decode("utf-8", "replace"))
            stream.close()

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        return thread
