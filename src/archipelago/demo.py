"""What `make demo` runs today: one keepstore on loopback, a directory in, the same bytes out.

Later issues grow this into the headline scenario: three clusters and one workflow.
"""

from __future__ import annotations

import filecmp
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .boot import KeepstoreProcess
from .config import parse_config
from .keep.client import KeepClient
from .keep.locator import EMPTY_LOCATOR
from .keep.manifest import parse, portable_data_hash
from .keep.transfer import download, plan_upload, upload


@dataclass
class DemoReport:
    keepstore_url: str
    files: int
    bytes: int
    blocks: int
    portable_data_hash: str
    manifest_preview: str
    put_seconds: float
    get_seconds: float
    verified: bool
    mismatches: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        mb = self.bytes / 1e6
        status = "all files byte-identical" if self.verified else f"MISMATCH: {', '.join(self.mismatches)}"
        return (
            f"keepstore      {self.keepstore_url} (directory volume, signed locators)\n"
            f"stored         {self.files} files, {mb:.1f} MB in {self.blocks} blocks "
            f"({self.put_seconds:.2f} s, {mb / max(self.put_seconds, 1e-9):.0f} MB/s)\n"
            f"read back      {mb:.1f} MB ({self.get_seconds:.2f} s, {mb / max(self.get_seconds, 1e-9):.0f} MB/s)\n"
            f"PDH            {self.portable_data_hash}\n"
            f"manifest       {self.manifest_preview}\n"
            f"verified       {status}"
        )


def make_sample_tree(root: Path, seed: int = 7) -> Path:
    """A small dataset: many small text files and a couple of larger binary ones."""
    rng = random.Random(seed)
    for sample in range(20):
        folder = root / f"sample_{sample:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for read in range(10):
            lines = "".join(f"read{read}\t{rng.randrange(10**6)}\tACGT{rng.randrange(10**4)}\n" for _ in range(50))
            (folder / f"reads_{read}.tsv").write_text(lines)
    (root / "reference").mkdir(exist_ok=True)
    (root / "reference" / "genome.bin").write_bytes(os.urandom(40 << 20))
    (root / "reference" / "index.bin").write_bytes(os.urandom(3 << 20))
    (root / "empty-results").mkdir(exist_ok=True)
    return root


def run_demo(scratch: Path, source: Path | None = None) -> DemoReport:
    source = source or make_sample_tree(scratch / "input")
    config = parse_config({"cluster_id": "zzzzz", "volumes": [{"driver": "directory", "root": str(scratch / "vol")}]})
    token = "v2/zzzzz-gj3su-000000000000000/demo-token-not-secret"
    with KeepstoreProcess(config, scratch) as keepstore:
        client = KeepClient.from_urls([keepstore.url], token, cache=None)
        plan = plan_upload([source])
        started = time.perf_counter()
        manifest_text = upload(client, plan)
        put_seconds = time.perf_counter() - started
        started = time.perf_counter()
        out = scratch / "output"
        download(client, manifest_text, out)
        get_seconds = time.perf_counter() - started
    mismatches = [name for _, name in plan.files if not filecmp.cmp(source / name, out / name, shallow=False)]
    mismatches += [d for d in plan.directories if not (out / d).is_dir()]
    blocks = {loc for stream in parse(manifest_text).streams for loc in stream.locators} - {EMPTY_LOCATOR}
    preview = manifest_text.splitlines()[0]
    return DemoReport(
        keepstore_url=keepstore.url,
        files=len(plan.files),
        bytes=plan.total_bytes,
        blocks=len(blocks),
        portable_data_hash=portable_data_hash(manifest_text),
        manifest_preview=preview if len(preview) < 160 else preview[:157] + "...",
        put_seconds=put_seconds,
        get_seconds=get_seconds,
        verified=not mismatches,
        mismatches=mismatches,
    )
