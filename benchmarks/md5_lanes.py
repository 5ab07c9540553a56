"""md5 in SIMD lanes (keep/_md5lanes.c, AVX-512), several blocks at once, beside hashlib's OpenSSL
md5 one block after another, on the same blocks in the same round.

Judged by:  lanes rate / hashlib rate, at 4 blocks at once (what one reader keeps in flight: the
            keep client's max_workers) and at 16 (a relay or keepstore busy with many)

Why it exists (README, Federated read): a cold federated read was bound by the CPU its three
processes spend, and md5 was two of the 5.2 CPU-s per GiB (the relay's and the client's). One
block's md5 cannot be split (each 64-byte chunk needs the state the one before left), so compiled
code gains only across blocks: keep/md5.py hands every piece being hashed to one engine that runs
what is waiting together. The lanes are checked against hashlib on random messages first.

With --avx2 the AVX2 kernel is measured instead (what a CPU without AVX-512 runs).

    .venv/bin/python benchmarks/md5_lanes.py [--rounds 3] [--avx2] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import time

from archipelago.keep.md5 import _INIT, LANES_AVAILABLE, LaneMd5

BLOCK = 64 << 20
LANES = (1, 2, 4, 8, 16)


def check() -> None:
    rng = random.Random(7)
    for _ in range(200):
        message = rng.randbytes(rng.randrange(0, 3000))
        hasher = LaneMd5()
        hasher.update(message)
        if hasher.hexdigest() != hashlib.md5(message).hexdigest():
            sys.exit("the lanes disagree with hashlib: no figures from a wrong md5")


def one_round(blocks: list[bytes], avx2_only: bool) -> dict[int, tuple[float, float]]:
    """{lanes: (lanes MB/s, hashlib MB/s)} over the same blocks."""
    from archipelago.keep import _md5lanes

    rates = {}
    for lanes in LANES:
        chosen = blocks[:lanes]
        states = [bytearray(_INIT) for _ in chosen]
        start = time.perf_counter()
        _md5lanes.advance(states, chosen, avx2_only)
        simd = time.perf_counter() - start
        start = time.perf_counter()
        for block in chosen:
            hashlib.md5(block)
        one_by_one = time.perf_counter() - start
        rates[lanes] = (lanes * BLOCK / simd / 1e6, lanes * BLOCK / one_by_one / 1e6)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--avx2", action="store_true", help="the AVX2 kernel even where AVX-512 is there")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not LANES_AVAILABLE:
        print("(md5 lanes not available here: the extension was not built, or this CPU has neither AVX-512 nor AVX2)")
        return
    check()
    blocks = [os.urandom(BLOCK) for _ in range(max(LANES))]
    rounds = [one_round(blocks, args.avx2) for _ in range(args.rounds)]
    median = {lanes: (statistics.median(r[lanes][0] for r in rounds), statistics.median(r[lanes][1] for r in rounds))
              for lanes in LANES}
    if args.json:
        print(json.dumps({str(k): {"lanes_mb_s": round(simd), "hashlib_mb_s": round(one), "ratio": round(simd / one, 2)}
                          for k, (simd, one) in median.items()}))
        return
    kernels = "AVX2" if args.avx2 else "the best this CPU has"
    print(f"md5 of 64 MiB blocks, {kernels}, median of {args.rounds} rounds (checked against hashlib first)")
    for lanes, (simd, one_by_one) in median.items():
        print(f"  {lanes:2d} at once: lanes {simd:6.0f} MB/s   hashlib one by one {one_by_one:5.0f} MB/s   "
              f"ratio {simd / one_by_one:.2f}")


if __name__ == "__main__":
    main()
