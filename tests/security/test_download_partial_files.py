"""archi get (keep/transfer.py download) writes each file under a partial name of its own first. A
manifest may name a file `x` and another `x.archi-part` (what `x`'s partial file was once called):
the second, finished first, was renamed over `x`'s partial and `x` was then finished from it — the
other file's bytes and size, looking complete (found by an attacker reviewing this code). Nor may a
file already in the destination under such a name be truncated or removed."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from archipelago.keep.transfer import PART_SUFFIX, download

BLOCKS = {name: name.encode() * 1000 for name in ("A", "B", "C")}
LOCATORS = {name: f"{hashlib.md5(data).hexdigest()}+{len(data)}" for name, data in BLOCKS.items()}


class BlockSource:
    def stream_blocks(self, locators: Iterable[str]) -> Iterator[memoryview]:
        by_locator = {LOCATORS[name]: data for name, data in BLOCKS.items()}
        for locator in locators:
            yield memoryview(by_locator[locator])


def test_a_file_named_like_anothers_partial_does_not_change_it(tmp_path: Path) -> None:
    # stream A C B: x.archi-part = A + C (2000 bytes), x = B (1000 bytes)
    manifest = f". {LOCATORS['A']} {LOCATORS['C']} {LOCATORS['B']} 0:2000:x{PART_SUFFIX} 2000:1000:x\n"
    download(BlockSource(), manifest, tmp_path)  # type: ignore[arg-type]
    assert (tmp_path / "x").read_bytes() == BLOCKS["B"]
    assert (tmp_path / f"x{PART_SUFFIX}").read_bytes() == BLOCKS["A"] + BLOCKS["C"]


def test_a_local_file_named_like_a_partial_file_is_left_alone(tmp_path: Path) -> None:
    mine = tmp_path / f"x{PART_SUFFIX}"
    mine.write_bytes(b"the user's own notes")
    download(BlockSource(), f". {LOCATORS['B']} 0:1000:x\n", tmp_path)  # type: ignore[arg-type]
    assert mine.read_bytes() == b"the user's own notes" and (tmp_path / "x").read_bytes() == BLOCKS["B"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x", f"x{PART_SUFFIX}"]  # no partial file left


def test_a_downloaded_file_gets_the_mode_a_new_file_would(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        download(BlockSource(), f". {LOCATORS['B']} 0:1000:x\n", tmp_path)  # type: ignore[arg-type]
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x").stat().st_mode) == 0o640
