"""`archi copy` sends a collection's blocks and keeps the source's manifest text, only its locators
replaced by the destination's (as arv-copy does): the copy has the source's PDH even when that text is
not in today's normal form, and every block is sent, those no file reads included."""

from __future__ import annotations

import hashlib
import threading
from types import SimpleNamespace

from archipelago.formats.manifest import normalize, parse, portable_data_hash
from archipelago.sdk.copy import CopyReport, FederationCopy

SIGNATURE = "+A" + "0" * 40 + "@ffffffff"


class Keep:
    def __init__(self, blocks: dict[str, bytes]):
        self.blocks = blocks

    def get(self, locator: str) -> bytes:
        return self.blocks[locator.split("+")[0]]

    def put(self, data: bytes) -> str:
        md5 = hashlib.md5(data).hexdigest()
        self.blocks[md5] = data
        return f"{md5}+{len(data)}{SIGNATURE}"


def locator(data: bytes, hints: str = "") -> str:
    return f"{hashlib.md5(data).hexdigest()}+{len(data)}{hints}"


def test_the_copy_keeps_the_source_text_and_its_pdh() -> None:
    x, y, unread = b"x", b"yy", b"read by no file"
    at_source = "+Rz1111-" + "ab" * 20 + "@ffffffff"
    text = (f"./a-c {locator(x, at_source)} 0:1:x\n"  # before ./a/b: written in an older stream order
            f"./a/b {locator(y, at_source)} {locator(unread, at_source)} 0:2:y\n"
            f"./e d41d8cd98f00b204e9800998ecf8427e+0{at_source} 0:0:empty\n")
    assert normalize(text) != text
    source = Keep({hashlib.md5(d).hexdigest(): d for d in (x, y, unread)})
    dest = Keep({})
    copy = FederationCopy.__new__(FederationCopy)  # no clusters: only the block sending is under test
    copy.source = SimpleNamespace(keep=lambda cache=None: source)
    copy.dest = SimpleNamespace(keep=lambda cache=None: dest)
    copy.report, copy.progress, copy._known, copy._scanned = CopyReport(), lambda n: None, {}, {"project"}
    copy._ticked, copy._lock = set(), threading.Lock()

    copied = copy._send_blocks(text, "project")
    assert portable_data_hash(copied) == portable_data_hash(text)
    assert copied == (f"./a-c {locator(x, SIGNATURE)} 0:1:x\n"
                      f"./a/b {locator(y, SIGNATURE)} {locator(unread, SIGNATURE)} 0:2:y\n"
                      f"./e d41d8cd98f00b204e9800998ecf8427e+0 0:0:empty\n")
    assert set(dest.blocks) == set(source.blocks) and copy.report.blocks_sent == 3
    parse(copied).tree()
