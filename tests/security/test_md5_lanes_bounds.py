"""The md5 kernels read nothing outside the buffers they are given: each lane's message ends right
before a page that faults when touched (a read past it would kill the test process)."""

from __future__ import annotations

import ctypes
import hashlib
import mmap
import struct
from pathlib import Path

import pytest

from archipelago.keep.md5 import _INIT, LANES_AVAILABLE

PAGE = mmap.PAGESIZE


def _guarded(length: int) -> tuple[mmap.mmap, memoryview]:
    """`length` bytes that end where an inaccessible page begins."""
    pages = -(-length // PAGE) + 1
    area = mmap.mmap(-1, pages * PAGE)
    start = ctypes.addressof(ctypes.c_char.from_buffer(area))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(start + (pages - 1) * PAGE, PAGE, 0) == 0  # PROT_NONE
    offset = (pages - 1) * PAGE - length
    return area, memoryview(area)[offset: offset + length]


@pytest.mark.skipif(not LANES_AVAILABLE, reason="md5 lanes not built, or neither AVX-512 nor AVX2 here")
@pytest.mark.parametrize("avx2_only", [False, True], ids=["best", "avx2"])
@pytest.mark.parametrize("lanes", [1, 3, 4, 5, 8, 9, 16])
def test_no_kernel_reads_past_the_end_of_a_lane(lanes: int, avx2_only: bool) -> None:
    from archipelago.keep import _md5lanes

    if avx2_only and "avx2" not in Path("/proc/cpuinfo").read_text().split():
        pytest.skip("no AVX2 on this CPU")
    lengths = [64 * (1 + 37 * i % 50) for i in range(lanes)]  # different lengths: lanes finish apart
    guarded = [_guarded(n) for n in lengths]
    for n, (_, view) in zip(lengths, guarded, strict=True):
        view[:] = bytes((i * 7 + n) % 251 for i in range(n))
    states = [bytearray(_INIT) for _ in lengths]
    _md5lanes.advance(states, [view for _, view in guarded], avx2_only)
    for (_, view), state in zip(guarded, states, strict=True):
        tail = b"\x80" + bytes(55) + struct.pack("<Q", len(view) * 8)
        _md5lanes.advance([state], [tail])
        assert struct.pack("<4I", *struct.unpack("=4I", state)).hex() == hashlib.md5(view).hexdigest()
    for area, view in guarded:
        view.release()
        area.close()
