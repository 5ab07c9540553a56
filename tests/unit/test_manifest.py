"""Manifest grammar, normalization and PDH, with the vectors of the reference (§2)."""

import hashlib
import random
from concurrent.futures import Future

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archipelago.formats import manifest
from archipelago.formats.manifest import ManifestError, escape, normalize, parse, portable_data_hash, unescape
from archipelago.keep.writer import ManifestWriter

EMPTY = "d41d8cd98f00b204e9800998ecf8427e+0"
SIGNED = (
    ". 930625b054ce894ac40596c3f5a0d947+33+A1f27a35dd9af37191d63ad8eb8985624451e7b79@5835c8bc"
    " 0:0:a 0:0:b 0:33:output.txt\n"
    "./c d41d8cd98f00b204e9800998ecf8427e+0+A27117dcd30c013a6e85d6d74c9a50179a1446efa@5835c8bc 0:0:d\n"
)


def test_pdh_vectors():
    assert portable_data_hash(SIGNED) == "a195f5f4d549f9bb9aa39e5dd8638618+111"
    assert manifest.strip_hints(SIGNED) == (
        ". 930625b054ce894ac40596c3f5a0d947+33 0:0:a 0:0:b 0:33:output.txt\n./c " + EMPTY + " 0:0:d\n"
    )
    assert portable_data_hash(f". {EMPTY} 0:0:ocelot\n") == "8ea82759a04e5ce160fb3b0c7f771b1d+48"
    assert portable_data_hash("") == "d41d8cd98f00b204e9800998ecf8427e+0"


def test_pdh_is_over_the_submitted_text_not_a_normalized_one():
    unsorted = f". {EMPTY} 0:0:b 0:0:a\n"
    assert portable_data_hash(unsorted) != portable_data_hash(normalize(unsorted))
    assert portable_data_hash(f". {EMPTY}+K@xyzzy 0:0:b 0:0:a\n") == portable_data_hash(unsorted)


def test_doc_examples_are_normalized():
    for text in (
        ". 930625b054ce894ac40596c3f5a0d947+33 0:0:a 0:0:b 0:33:output.txt\n./c " + EMPTY + " 0:0:d\n",
        ". c449ed86671e4a34a8b8b9430850beba+67108864 09fcfea01c3a141b89dd0dcfa1b7768e+22534144"
        " 0:89643008:Docker\\040image.tar\n",
    ):
        assert normalize(text) == text


def test_normalize_sorts_merges_and_moves_paths_into_streams():
    a, b = "a" * 32 + "+10", "b" * 32 + "+5"
    text = f"./z {a} 0:10:f\n. {a} {b} 0:4:y 4:6:y 10:5:x 0:0:e 0:2:sub/deep\n"
    assert normalize(text) == (
        # blocks in order of first use by the sorted files: x uses b before y uses a
        f". {b} {a} 0:0:e 0:5:x 5:10:y\n./sub {a} 0:2:deep\n./z {a} 0:10:f\n"
    )


def test_repeated_file_is_concatenated_in_manifest_order():
    a, b = "a" * 32 + "+3", "b" * 32 + "+4"
    text = f". {b} 0:4:f\n. {a} 0:3:f\n"
    assert normalize(text) == f". {b} {a} 0:7:f\n"


def test_empty_directory():
    text = f"./empty {EMPTY} 0:0:\\056\n./full {EMPTY} 0:0:x\n"
    assert normalize(text) == text
    assert parse(f"./d {EMPTY} 0:0:.\n").tree() == {"./d": {}}
    # a directory with a subdirectory is implied by it, not written as empty
    assert normalize(f"./a {EMPTY} 0:0:.\n./a/b {EMPTY} 0:0:f\n") == f"./a/b {EMPTY} 0:0:f\n"


def test_segments_spanning_blocks():
    a, b = "a" * 32 + "+10", "b" * 32 + "+10"
    tree = parse(f". {a} {b} 5:10:f\n").tree()
    assert tree["."]["f"] == [(a, 5, 5), (b, 0, 5)]


@pytest.mark.parametrize(
    ("name", "escaped"),
    [("a b", "a\\040b"), ("a:b", "a\\072b"), ("back\\slash", "back\\134slash"), ("tab\t", "tab\\011"),
     ("é", "é")],
)
def test_escaping(name, escaped):
    assert escape(name) == escaped
    assert unescape(escaped) == name


def test_unescape_decodes_utf8_bytes():
    assert unescape("caf\\303\\251") == "café"


@pytest.mark.parametrize(
    ("text", "line", "token", "reason"),
    [
        (f". {EMPTY} 0:0:a", 1, None, "end with a newline"),
        (f". {EMPTY} 0:0:a\n\n", 2, None, "empty line"),
        (f". {EMPTY} 0:0:a \n", 1, None, "trailing space"),
        (f".  {EMPTY} 0:0:a\n", 1, 2, "empty token"),
        (". 0:0:a\n", 1, 2, "block locator"),
        (f". {EMPTY}\n", 1, None, "file token"),
        (f"foo {EMPTY} 0:0:a\n", 1, 1, "stream name"),
        (f"./a/../b {EMPTY} 0:0:a\n", 1, 1, "'..'"),
        (f"./a/ {EMPTY} 0:0:a\n", 1, 1, "empty path component"),
        (f"./a//b {EMPTY} 0:0:a\n", 1, 1, "empty path component"),
        (f". {EMPTY} 0:0:a/\n", 1, 3, "empty path component"),
        (f". {EMPTY} 0:0:/a\n", 1, 3, "empty path component"),
        (f". {EMPTY} 0:0:a/./b\n", 1, 3, "'.'"),
        (f". {EMPTY} 0:0:..\n", 1, 3, "'..'"),
        (f". {EMPTY} 0:0:a\\057\n", 1, 3, "empty path component"),  # an escaped '/' counts as one
        (f". {EMPTY} 0:0:a {EMPTY}\n", 1, 4, "locator after a file token"),
        (f". {EMPTY} 0:0:a\\400\n", 1, 3, "escaped"),  # escapes above \377 are not bytes
        (f". {EMPTY} 0:x:a\n", 1, 3, "invalid file token"),
        (f". {EMPTY[:-2]}+Z+0 0:0:a\n", 1, 2, "size must"),
        (f". {EMPTY} 0:0:a\n./x {EMPTY} 0:0:b\n.\n", 3, None, None),
    ],
)
def test_errors_name_line_and_token(text, line, token, reason):
    with pytest.raises(ManifestError) as info:
        manifest.validate(text)
    assert info.value.line == line
    if token is not None:
        assert info.value.token == token
    if reason is not None:
        assert reason in str(info.value)


def test_segment_past_the_end_of_the_blocks():
    with pytest.raises(ManifestError, match="ends past"):
        manifest.validate(f". {EMPTY} 0:1:a\n")


def test_empty_manifest_is_valid():
    manifest.validate("")
    assert normalize("") == ""


# ----------------------------------------------------------------- properties
def _store(blocks: dict[str, bytes]):
    def submit(data: memoryview) -> Future[str]:
        locator = f"{hashlib.md5(data).hexdigest()}+{len(data)}"
        blocks[locator] = bytes(data)  # the writer reuses its buffer once the future is done
        future: Future[str] = Future()
        future.set_result(locator)
        return future

    return submit


def _read_tree(tree, blocks):
    return {
        f"{d}/{name}": b"".join(blocks[loc][off : off + size] for loc, off, size in segs)
        for d, files in tree.items()
        for name, segs in files.items()
    }


name_chars = st.characters(codec="utf-8", exclude_characters="/\x00", exclude_categories=("Cs",))
names = st.text(name_chars, min_size=1, max_size=8).filter(lambda n: n not in (".", ".."))
paths = st.lists(names, min_size=1, max_size=3).map("/".join)
trees = st.dictionaries(paths, st.binary(max_size=40), min_size=1, max_size=12).filter(
    # a path cannot be both a file and a directory
    lambda files: not any(other.startswith(path + "/") for path in files for other in files)
)


@settings(max_examples=150, deadline=None)
@given(files=trees, block_size=st.integers(1, 64), seed=st.integers(0, 1000))
def test_writer_manifest_round_trips_and_normalization_keeps_bytes(files, block_size, seed):
    blocks: dict[str, bytes] = {}
    writer = ManifestWriter(_store(blocks), block_size=block_size)
    for path in sorted(files):
        writer.write_file(path, files[path])
    text = writer.finish()
    manifest.validate(text)
    assert normalize(text) == text  # the writer already produces the normalized form
    expected = {f"./{path}": data for path, data in files.items()}
    assert _read_tree(parse(text).tree(), blocks) == expected

    # scramble: one stream per segment, files in random order -> normalizes back to the same text
    rng = random.Random(seed)
    lines = []
    for dirname, dfiles in parse(text).tree().items():
        for name, segments in dfiles.items():
            if not segments:
                lines.append((rng.random(), [f"{escape(dirname)} {EMPTY} 0:0:{escape(name)}\n"]))
            lines.append((rng.random(), [f"{escape(dirname)} {loc} {off}:{size}:{escape(name)}\n"
                                         for loc, off, size in segments]))
    scrambled = "".join(line for _, group in sorted(lines) for line in group)
    assert _read_tree(parse(scrambled).tree(), blocks) == expected
    assert normalize(scrambled) == text
    # parse(format(x)) == x: the streams re-render byte for byte
    reparsed = parse(text)
    assert "".join(
        " ".join([escape(s.name), *s.locators, s.files_text]) + "\n" for s in reparsed.streams
    ) == text


def test_block_copies_name_where_each_block_is_read() -> None:
    from archipelago.formats.manifest import block_copies

    text = (". acbd18db4cc2f85cedef654fccc4a4d8+3+K@z1111-bi6l4-gateway00000001+Aabc@5f0 "
            "37b51d194a7513e45b56f6524f2d51f2+3+Rz2222-" + "ab" * 20 + "@5f0e1a2b "
            "73feffa4b7f6bb68e44cf984c85f6e88+3 0:9:f.txt\n")
    assert block_copies(text) == {("acbd18db4cc2f85cedef654fccc4a4d8+3", "z1111-bi6l4-gateway00000001"),
                                  ("37b51d194a7513e45b56f6524f2d51f2+3", "remote:z2222"),
                                  ("73feffa4b7f6bb68e44cf984c85f6e88+3", "keep")}


def test_replace_locators_touches_locators_only() -> None:
    from archipelago.formats.manifest import replace_locators

    text = ". acbd18db4cc2f85cedef654fccc4a4d8+3 0:3:acbd18db4cc2f85cedef654fccc4a4d8+3\n"
    moved = replace_locators(text, {"acbd18db4cc2f85cedef654fccc4a4d8+3": "acbd18db4cc2f85cedef654fccc4a4d8+3+K@x"})
    assert moved == ". acbd18db4cc2f85cedef654fccc4a4d8+3+K@x 0:3:acbd18db4cc2f85cedef654fccc4a4d8+3\n"
