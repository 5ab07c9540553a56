"""Downloading a manifest's files: a failure never leaves a file of the right size with wrong bytes,
and a re-run fetches only what is not already verified in place. The keep client here is an
in-process stand-in serving blocks from a dict (the real one's md5 checks are tested elsewhere)."""

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from archipelago.keep.transfer import PART_SUFFIX, download

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
