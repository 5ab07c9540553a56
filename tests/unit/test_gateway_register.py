"""What `archi register` writes (gateway/register.py): manifests the official Arvados SDK reads as we
do — an empty file is `0:0:name`, never a zero-length block between two with data (issue 17,
defect 10) — and object names that are no path in a collection refused before anything is read."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from archipelago.errors import BadRequest
from archipelago.formats.manifest import check_interop, parse
from archipelago.gateway.register import register
from archipelago.gateway.stores import PathStore, StoredObject

GW = "z1111-bi6l4-gateway00000000"
EMPTY = "d41d8cd98f00b204e9800998ecf8427e+0"


class Bucket:
    """Objects as S3 lists them: flat keys, folder markers ending in "/" included."""

    def __init__(self, objects: dict[str, bytes]):
        self.data = objects
        self.opened: list[str] = []

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        for key in sorted(self.data):
            if key.startswith(prefix):
                yield StoredObject(key, len(self.data[key]), hashlib.md5(self.data[key]).hexdigest())

    def open(self, name: str, version: str) -> io.BytesIO:
        self.opened.append(name)
        return io.BytesIO(self.data[name])


def official_files(text: str, blocks: dict[str, bytes], store: Path) -> dict[str, bytes]:
    """Every file as the official SDK (offline, over a local block store) reads it."""
    pytest.importorskip("arvados.collection")
    import arvados.collection
    import arvados.keep

    store.mkdir(exist_ok=True)
    keep = arvados.keep.KeepClient(local_store=str(store))
    for data in blocks.values():
        keep.put(data)
    found: dict[str, bytes] = {}

    def walk(directory, prefix: str) -> None:
        for name in directory:
            item = directory[name]
            if isinstance(item, arvados.collection.RichCollectionBase):
                walk(item, f"{prefix}/{name}")
            else:
                with directory.open(name, "rb") as handle:
                    found[f"{prefix}/{name}"] = handle.read(item.size())

    walk(arvados.collection.Collection(text, keep_client=keep, replication_desired=1), ".")
    return found


def test_a_prefix_with_an_empty_file_between_two_others(tmp_path):
    root = tmp_path / "root"
    (root / "run1" / "sub" / "deep").mkdir(parents=True)
    files = {"a.txt": b"a" * 15, "b.txt": b"", "c.txt": b"c" * 105, "sub/x": b"x", "sub/deep/e": b""}
    for name, data in files.items():
        (root / "run1" / name).write_bytes(data)
    text = register(PathStore(root), GW, "run1").manifest_text
    la, lc = (f"{hashlib.md5(d).hexdigest()}+{len(d)}+K@{GW}" for d in (files["a.txt"], files["c.txt"]))
    assert text.splitlines()[0] == f". {la} {lc} 0:15:a.txt 0:0:b.txt 15:105:c.txt"
    assert f"./sub/deep {EMPTY} 0:0:e" in text.splitlines()
    check_interop(parse(text))
    blocks = {f"{hashlib.md5(d).hexdigest()}+{len(d)}": d for d in files.values() if d}
    assert official_files(text, blocks, tmp_path / "keep") == {f"./{name}": data for name, data in files.items()}


def test_the_whole_store_keeps_its_directories(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "same.txt").write_bytes(b"1")
    (tmp_path / "two" / "same.txt").write_bytes(b"2")  # flattened, one would have replaced the other
    text = register(PathStore(tmp_path), GW, "").manifest_text
    assert sorted(parse(text).tree()) == ["./one", "./two"]


def test_folder_markers_are_directories_and_empty_ones_stay():
    bucket = Bucket({"r/": b"", "r/empty/": b"", "r/full/": b"", "r/full/f": b"hi"})
    text = register(bucket, GW, "r/").manifest_text
    assert text == (f"./empty {EMPTY} 0:0:\\056\n"
                    f"./full {hashlib.md5(b'hi').hexdigest()}+2+K@{GW} 0:2:f\n")
    assert bucket.opened == ["r/full/f"]  # markers are not read


@pytest.mark.parametrize(("objects", "reason"), [
    ({"r/a": b"1", "r/a/b": b"2"}, "both a file and a directory"),
    ({"r/a//b": b"1"}, "no path in a collection"),
    ({"r/./b": b"1"}, "no path in a collection"),
    ({"r/x/": b"zz"}, "ends with '/' but holds 2 bytes"),
])
def test_names_that_are_no_path_in_a_collection_are_refused_before_reading(objects, reason):
    bucket = Bucket({**objects, "r/big": b"b" * 1000})
    with pytest.raises(BadRequest, match=reason):
        register(bucket, GW, "r/")
    assert bucket.opened == []
