import io

from archipelago.formats.locator import BLOCK_SIZE
from archipelago.formats.manifest import parse
from archipelago.keep.writer import ManifestWriter


def test_small_files_share_a_block_and_big_files_span_blocks():
    blocks = []

    def submit(data):
        from archipelago.keep.writer import hash_only

        blocks.append(len(data))
        return hash_only(data)

    writer = ManifestWriter(submit)
    for n in range(100):
        writer.write_file(f"small/{n:03d}.txt", b"x" * 1000)
    writer.write_file("big.bin", io.BytesIO(b"\0" * (BLOCK_SIZE + 5)))
    text = writer.finish()
    assert blocks == [BLOCK_SIZE, 100_000 + 5]
    tree = parse(text).tree()
    assert [s[2] for s in tree["."]["big.bin"]] == [BLOCK_SIZE - 100_000, 100_000 + 5]
    assert len(tree["./small"]) == 100
    assert all(size <= BLOCK_SIZE for size in blocks)


def test_empty_files_and_directories():
    writer = ManifestWriter()
    writer.write_file("a/empty", b"")
    writer.add_directory("b/c")
    assert writer.finish() == (
        "./a d41d8cd98f00b204e9800998ecf8427e+0 0:0:empty\n./b/c d41d8cd98f00b204e9800998ecf8427e+0 0:0:\\056\n"
    )
