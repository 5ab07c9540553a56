"""Downloading a manifest's files: a failure never leaves a file of the right size with wrong bytes,
and a re-run fetches only what is not already verified in place. The keep client here is an
in-process stand-in serving blocks from a dict (the real one's md5 checks are tested elsewhere)."""

import hashlib
import mmap
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from archipelago.keep.transfer import PART_SUFFIX, _page_aligned, _write_piece, download

BLOCKS = {name: name.encode() * 1000 for name in ("a", "b", "c")}
LOCATORS = {name: f"{hashlib.md5(data).hexdigest()}+{len(data)}" for name, data in BLOCKS.items()}
MANIFEST = (f". {LOCATORS['a']} {LOCATORS['b']} 0:1000:a.txt 1000:1000:b.txt\n"
            f"./sub {LOCATORS['c']} 0:1000:c.txt 0:0:empty.txt\n")


class BlockSource:
    """Serves blocks by locator; fails (as a corrupt or missing block does) once `fail_after` were served."""

    def __init__(self, fail_after: int | None = None):
        self.fail_after, self.asked = fail_after, []

    def stream_blocks(self, locators: Iterable[str]) -> Iterator[memoryview]:
        by_locator = {LOCATORS[name]: data for name, data in BLOCKS.items()}
        for n, locator in enumerate(locators):
            if self.fail_after is not None and n >= self.fail_after:
                raise OSError(f"block {locator} is corrupt on every service")
            self.asked.append(locator)
            yield memoryview(by_locator[locator])


def files(dest: Path) -> dict[str, bytes]:
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


def test_download_writes_every_file(tmp_path: Path) -> None:
    assert download(BlockSource(), MANIFEST, tmp_path) == 3000  # type: ignore[arg-type]
    assert files(tmp_path) == {"a.txt": BLOCKS["a"], "b.txt": BLOCKS["b"], "sub/c.txt": BLOCKS["c"],
                               "sub/empty.txt": b""}


def test_a_failed_download_leaves_no_file_with_wrong_bytes(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="corrupt"):
        download(BlockSource(fail_after=1), MANIFEST, tmp_path)  # type: ignore[arg-type]
    found = files(tmp_path)
    assert not [name for name in found if name.endswith(PART_SUFFIX)]  # partial files removed
    for name, data in found.items():  # whatever is there is whole and right
        assert data == {"a.txt": BLOCKS["a"], "b.txt": BLOCKS["b"], "sub/c.txt": BLOCKS["c"],
                        "sub/empty.txt": b""}[name]
    assert "a.txt" in found and "b.txt" not in found and "sub/c.txt" not in found


def test_a_rerun_fetches_only_what_is_missing_or_wrong(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        download(BlockSource(fail_after=1), MANIFEST, tmp_path)  # type: ignore[arg-type]
    (tmp_path / "sub").mkdir(exist_ok=True)
    (tmp_path / "sub" / "c.txt").write_bytes(b"x" * 1000)  # right size, wrong bytes: fetched again
    again = BlockSource()
    download(again, MANIFEST, tmp_path)  # type: ignore[arg-type]
    assert LOCATORS["a"] not in again.asked
    assert set(again.asked) == {LOCATORS["b"], LOCATORS["c"]}
    assert files(tmp_path)["sub/c.txt"] == BLOCKS["c"]


@pytest.mark.parametrize("position", [0, 4096, 3 << 20, 100])  # aligned, or not: then all through the page cache
@pytest.mark.parametrize("size", [(2 << 20), (2 << 20) + 123, 5000])  # whole pages, a ragged tail, a small piece
@pytest.mark.parametrize("pooled", [True, False])  # a page-aligned pooled buffer, or plain bytes
def test_a_piece_lands_byte_for_byte_whichever_way_it_is_written(tmp_path: Path, position: int, size: int,
                                                                  pooled: bool) -> None:
    data = os.urandom(size)
    view: memoryview | bytes = data
    if pooled:
        buffer = mmap.mmap(-1, size)
        buffer[:] = data
        view = memoryview(buffer)
    target = tmp_path / "file"
    before = os.urandom(position + size + 4096)  # the file's other bytes must not move
    target.write_bytes(before)
    _write_piece(target, position, view)
    after = target.read_bytes()
    assert after[position:position + size] == data
    assert after[:position] == before[:position] and after[position + size:] == before[position + size:]


def test_only_page_aligned_buffers_are_offered_to_o_direct() -> None:
    buffer = mmap.mmap(-1, 3 << 20)
    assert _page_aligned(memoryview(buffer)) and _page_aligned(memoryview(buffer)[4096:])
    assert not _page_aligned(memoryview(buffer)[100:])
    assert not _page_aligned(b"read-only bytes")
