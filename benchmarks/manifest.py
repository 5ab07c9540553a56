"""Manifest parse + portable data hash: ours beside the official Arvados Python SDK, same manifests.

Judged by:  Arvados (Collection(text) + portable_data_hash()) time / ours (parse + PDH) time
            target: >= 10x, at 100k and 1M files

Shapes (all normalized, as Arvados writers produce them, so both sides must agree on the PDH):
  packed      small files (1000-1999 B) packed into shared 64 MiB blocks, 100 directories
  per-file    one block per small file, one stream (the shape of machine-notes §1)
  multiblock  large files of ~200 MiB, each spanning four blocks (N/100 files)

The SDK runs in its own virtualenv (.bench-venv/arvados, created on first use) in a subprocess;
ours runs in this process. Our normalize time (expand every file, re-render) is printed too.

    .venv/bin/python benchmarks/manifest.py [--sizes 100000 1000000] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from archipelago.formats import manifest

ROOT = Path(__file__).resolve().parent.parent
ARVADOS_VENV = ROOT / ".bench-venv" / "arvados"
BLOCK = 1 << 26


def arvados_python() -> Path:
    python = ARVADOS_VENV / "bin" / "python"
    if not python.exists():
        print("creating the Arvados SDK environment in .bench-venv/arvados ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(ARVADOS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "arvados-python-client"], check=True)
    return python


def fake_locator(n: int, size: int) -> str:
    return f"{hashlib.md5(str(n).encode()).hexdigest()}+{size}"


def gen_packed(files: int) -> str:
    per_dir = files // 100
    lines = []
    serial = 0
    for d in range(100):
        sizes = [1000 + (i * 7919) % 1000 for i in range(per_dir)]
        total = sum(sizes)
        blocks = []
        left = total
        while left > 0:
            blocks.append(fake_locator(serial, min(BLOCK, left)))
            serial += 1
            left -= BLOCK
        tokens, pos = [], 0
        for i, size in enumerate(sizes):
            tokens.append(f"{pos}:{size}:file_{i:07d}.dat")
            pos += size
        lines.append(" ".join([f"./dir_{d:03d}", *blocks, *tokens]))
    return "\n".join(lines) + "\n"


def gen_per_file(files: int) -> str:
    sizes = [1000 + i % 1000 for i in range(files)]
    tokens, pos = [], 0
    for i, size in enumerate(sizes):
        tokens.append(f"{pos}:{size}:file_{i:07d}.dat")
        pos += size
    return " ".join([".", *(fake_locator(i, s) for i, s in enumerate(sizes)), *tokens]) + "\n"


def gen_multiblock(files: int) -> str:
    count = max(1, files // 100)
    file_size = 3 * BLOCK + 12_345_678
    locators, tokens = [], []
    for i in range(count):
        for b in range(4):
            locators.append(fake_locator(i * 4 + b, BLOCK if b < 3 else 12_345_678))
        tokens.append(f"{i * file_size}:{file_size}:large_{i:06d}.bam")
    return " ".join([".", *locators, *tokens]) + "\n"


SHAPES = {"packed": gen_packed, "per-file": gen_per_file, "multiblock": gen_multiblock}


def time_ours(text: str) -> dict[str, float | str]:
    start = time.perf_counter()
    parsed = manifest.parse(text)
    parsed_at = time.perf_counter()
    pdh = parsed.portable_data_hash()
    done = time.perf_counter()
    normalized = parsed.normalized()
    normalized_at = time.perf_counter()
    assert normalized == text, "generated manifests are normalized; ours must agree"
    return {"parse": parsed_at - start, "pdh": done - parsed_at, "normalize": normalized_at - done,
            "portable_data_hash": pdh}


def time_arvados(python: Path, path: Path) -> dict[str, float | str]:
    out = subprocess.run([str(python), str(ROOT / "benchmarks" / "_arvados_side.py"), str(path)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    python = arvados_python()
    rows = []
    with tempfile.TemporaryDirectory(prefix="manifest-bench-") as scratch:
        for files in args.sizes:
            for shape in args.shapes:
                text = SHAPES[shape](files)
                path = Path(scratch) / f"{shape}-{files}.txt"
                path.write_text(text)
                arv = time_arvados(python, path)
                ours = time_ours(text)
                del text
                if arv["portable_data_hash"] != ours["portable_data_hash"]:
                    raise SystemExit(f"PDH disagreement on {shape}-{files}: {arv} vs {ours}")
                ours_total = float(ours["parse"]) + float(ours["pdh"])
                arv_total = float(arv["parse"]) + float(arv["pdh"])
                rows.append({
                    "shape": shape, "files": files, "manifest_mb": round(path.stat().st_size / 1e6, 1),
                    "ours_parse_pdh_s": round(ours_total, 3), "ours_normalize_s": round(float(ours["normalize"]), 3),
                    "arvados_parse_pdh_s": round(arv_total, 3), "speedup": round(arv_total / ours_total, 1),
                })
                if not args.json:
                    r = rows[-1]
                    print(f"{shape:>10} {files:>9,} files {r['manifest_mb']:>6} MB   ours {ours_total:6.2f} s   "
                          f"Arvados SDK {arv_total:6.2f} s   speedup {r['speedup']:5.1f}x   "
                          f"(our normalize {r['ours_normalize_s']:.2f} s)", flush=True)
    if args.json:
        print(json.dumps({"rows": rows, "target_speedup": 10}, indent=2))
    else:
        print(f"minimum speedup {min(r['speedup'] for r in rows):.1f}x (target >= 10x); "
              "PDHs identical on every manifest")


if __name__ == "__main__":
    main()
