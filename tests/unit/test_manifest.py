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


# ----------------------------------------------------------------- as the official Arvados SDK reads it
A15, C105 = b"a" * 15, b"c" * 105
LA, LC = (f"{hashlib.md5(data).hexdigest()}+{len(data)}" for data in (A15, C105))


class OfficialSdk:
    """The official Arvados Python SDK, offline: collections over a local block store (machine-notes §1)."""

    def __init__(self, store: str):
        import arvados.collection
        import arvados.keep

        self.collections = arvados.collection
        self.keep = arvados.keep.KeepClient(local_store=store)

    def put(self, data: bytes) -> str:
        return str(self.keep.put(data))

    def collection(self, text: str):
        return self.collections.Collection(text, keep_client=self.keep, replication_desired=1)

    def files(self, text: str) -> dict[str, bytes]:
        """Every file the SDK sees, "./dir/name" -> its bytes as the SDK reads them."""
        found: dict[str, bytes] = {}

        def walk(directory, prefix: str) -> None:
            for name in directory:  # the SDK iterates over names, as keys()
                item = directory[name]
                if isinstance(item, self.collections.RichCollectionBase):
                    walk(item, f"{prefix}/{name}")
                    continue
                with directory.open(name, "rb") as handle:
                    data = handle.read(item.size())
                assert len(data) == item.size()
                found[f"{prefix}/{name}"] = data

        walk(self.collection(text), ".")
        return found

    def normalized(self, text: str) -> str:
        return self.collection(text).manifest_text(strip=True, normalize=True)


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> OfficialSdk:
    pytest.importorskip("arvados.collection")
    sdk = OfficialSdk(str(tmp_path_factory.mktemp("local-keep")))
    assert [sdk.put(A15), sdk.put(C105)] == [LA, LC]
    return sdk


@pytest.mark.parametrize("empty", [[], [(EMPTY, 0, 0)]], ids=["no segments", "a zero-length segment"])
def test_an_empty_file_among_others_renders_as_arvados_does_and_the_official_sdk_reads_every_file(official, empty):
    """Issue 17, defect 10: `archi register` wrote `<a> d41d8…+0 <c> 0:15:a.txt 15:0:b.txt 15:105:c.txt`,
    which the official SDK reads with c.txt empty."""
    text = manifest.render({".": {"a.txt": [(LA, 0, 15)], "b.txt": empty, "c.txt": [(LC, 0, 105)]}})
    assert text == f". {LA} {LC} 0:15:a.txt 0:0:b.txt 15:105:c.txt\n"
    assert official.files(text) == {"./a.txt": A15, "./b.txt": b"", "./c.txt": C105}
    assert official.normalized(text) == text


@pytest.mark.parametrize(("locators", "files", "refused"), [
    ([LA, EMPTY, LC], "0:15:a.txt 15:0:b.txt 15:105:c.txt", True),  # the defect: c.txt reads as empty
    ([EMPTY, EMPTY, LA], "0:15:a.txt", True),  # two in front: the search stops on the second
    ([LA, EMPTY, LC], "0:120:ac.txt", True),  # no file starts there, but a read at offset 15 would
    ([EMPTY, LA, LC], "0:0:b.txt 0:15:a.txt 15:105:c.txt", False),  # first in the stream: never searched
    ([LA, LC, EMPTY, EMPTY], "0:15:a.txt 120:0:b.txt 15:105:c.txt", False),  # after all the data
    ([EMPTY, EMPTY], "0:0:b.txt 0:0:d.txt", False),  # a stream without data
])
def test_a_zero_length_block_between_blocks_with_data_is_refused(official, locators, files, refused):
    text = f". {' '.join(locators)} {files}\n"
    expected = _read_tree(parse(text).tree(), {LA: A15, LC: C105})  # as we read it
    if not refused:
        manifest.check_interop(parse(text))
        assert official.files(text) == expected
        return
    with pytest.raises(ManifestError, match="zero-length block between blocks with data") as info:
        manifest.check_interop(parse(text))
    assert (info.value.line, info.value.token) == (1, 3)  # the stream's line, the locator at fault
    if files != "0:120:ac.txt":  # why the rule (the SDK 3.2 reads these files wrong, silently)
        assert official.files(text) != expected


@pytest.mark.parametrize("text", [
    f". {EMPTY} 0:0:a\n./a {EMPTY} 0:0:b\n",
    f"./a/b {EMPTY} 0:0:c\n. {EMPTY} 0:0:a\n",  # a directory only implied by a deeper one
    f". {EMPTY} 0:0:a 0:0:a/b\n",
    f"./a {EMPTY} 0:0:\\056\n. {EMPTY} 0:0:a\n",
])
def test_a_path_both_a_file_and_a_directory_is_refused(official, text):
    with pytest.raises(ManifestError, match="both a file and a directory"):
        manifest.check_interop(parse(text))
    with pytest.raises(Exception, match="conflicts with"):  # the SDK refuses it too
        official.collection(text)


def test_streams_are_rendered_depth_first_as_the_official_sdk_writes_them(official):
    """"./a/b" before "./a b" and "./a-c" (both sort before "/" as strings): the same files get the PDH
    arv-put gives them."""
    tree = {d: {"f": [(LA, 0, 15)]} for d in (".", "./a", "./a/b", "./a b", "./a-c", "./a.d/e")}
    text = manifest.render(tree)
    assert [line.split(" ")[0] for line in text.splitlines()] == [".", "./a", "./a/b", "./a\\040b", "./a-c",
                                                                 "./a.d/e"]
    assert official.normalized(text) == text
    assert manifest.render({".": {}}) == "" == official.normalized(f". {EMPTY} 0:0:\\056\n")


# names the official SDK splits apart: its reader splits tokens on any whitespace, Unicode's included
sdk_names = names.filter(lambda name: not any(c.isspace() and c > " " for c in name))
sdk_trees = st.dictionaries(st.lists(sdk_names, min_size=1, max_size=3).map("/".join),
                            st.binary(max_size=40) | st.just(b""), min_size=1, max_size=10).filter(
    lambda files: not any(other.startswith(path + "/") for path in files for other in files))


@settings(max_examples=150, deadline=None)
@given(files=sdk_trees, block_size=st.integers(1, 48), empty_dirs=st.lists(sdk_names, max_size=2),
       zero_segments=st.lists(st.integers(0, 1000), max_size=4))
def test_the_official_sdk_reads_what_render_writes(official, files, block_size, empty_dirs, zero_segments):
    """Random trees, empty files among non-empty ones (some written as register wrote them, with a
    zero-length segment of the empty block): the official SDK reads every file's bytes as written,
    and its own normalization of our manifest is our manifest."""
    blocks: dict[str, bytes] = {}
    writer = ManifestWriter(_store(blocks), block_size=block_size)
    for path in sorted(files):
        writer.write_file(path, files[path])
    for name in empty_dirs:
        if not any(path == name or path.startswith(name + "/") for path in files):
            writer.add_directory(f"empty/{name}")
    tree = writer.finish_tree()
    every = [segments for directory in tree.values() for segments in directory.values()]
    for n in zero_segments:  # zero-length segments anywhere in a file (how writers might spell "nothing")
        if every:
            segments = every[n % len(every)]
            segments.insert(n % (len(segments) + 1), (EMPTY, 0, 0))
    text = manifest.render(tree)
    for stream in parse(text).streams:  # the empty block: a stream's only locator, or none of them
        assert EMPTY not in stream.locators or stream.locators == [EMPTY]
    manifest.check_interop(parse(text))
    for locator, data in blocks.items():
        assert official.put(data) == locator
    assert official.files(text) == {f"./{path}": data for path, data in files.items()}
    assert official.normalized(text) == text
