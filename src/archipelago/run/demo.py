"""What `make demo` runs: a federation of three clusters on loopback. First a directory goes into a
collection at z1111 and comes back byte-identical; then the federated half (demo_federation.py):
private cohorts that stay on their clusters, a shared panel read across clusters, a copy, and the
bytes that crossed each boundary; then the headline (demo_meta.py): one CWL workflow whose steps
run next to three cohorts that may not leave their clusters, with only the summaries coming home.
"""

from __future__ import annotations

import contextlib
import filecmp
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..formats.locator import EMPTY_LOCATOR
from ..formats.manifest import parse
from ..keep.transfer import plan_upload
from ..sdk.client import ApiClient
from ..sdk.transfer import get_collection, put_paths
from .demo_federation import FederationReport, run_federation
from .demo_meta import MetaReport, run_meta_analysis
from .demo_resolver import ResolverReport, demo_resolver, run_resolver_demo
from .federation import init_federation
from .processes import ClusterProcess


@dataclass
class DemoReport:
    api_url: str
    keepstore_url: str
    collection_uuid: str
    files: int
    bytes: int
    blocks: int
    portable_data_hash: str
    manifest_preview: str
    put_seconds: float
    get_seconds: float
    verified: bool
    mismatches: list[str] = field(default_factory=list)
    federation: FederationReport | None = None
    meta: MetaReport | None = None
    resolver: ResolverReport | None = None  # the end: an identifier resolved, a site stopped, a launch

    @property
    def ok(self) -> bool:
        """The round trip is byte-identical, the federation kept every cohort home, and the
        meta-analysis ran next to the cohorts without moving them."""
        fed, meta = self.federation, self.meta
        return self.verified and (fed is None or (fed.cohort_bytes_crossed == 0 and fed.copy_again_bytes_sent == 0
                                                  and all(r.startswith("403") for r in fed.refusals.values()))) \
            and (meta is None or (meta.status == "success" and meta.cohort_bytes_crossed == 0)) \
            and (self.resolver is None or self.resolver.ok)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["federation"] = self.federation.as_dict() if self.federation else None
        out["meta"] = self.meta.as_dict() if self.meta else None
        out["resolver"] = self.resolver.as_dict() if self.resolver else None
        out["ok"] = self.ok
        return out

    def text(self) -> str:
        mb = self.bytes / 1e6
        status = "all files byte-identical" if self.verified else f"MISMATCH: {', '.join(self.mismatches)}"
        return (
            f"cluster        z1111: API {self.api_url}, keepstore {self.keepstore_url}\n"
            f"put            {self.files} files, {mb:.1f} MB in {self.blocks} blocks "
            f"({self.put_seconds:.2f} s, {mb / max(self.put_seconds, 1e-9):.0f} MB/s)\n"
            f"collection     {self.collection_uuid}\n"
            f"PDH            {self.portable_data_hash}\n"
            f"manifest       {self.manifest_preview}\n"
            f"get            {mb:.1f} MB ({self.get_seconds:.2f} s, {mb / max(self.get_seconds, 1e-9):.0f} MB/s)\n"
            f"verified       {status}"
        ) + "".join(f"\n{part.text()}" for part in (self.federation, self.meta, self.resolver) if part is not None)


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


def run_demo(scratch: Path, source: Path | None = None, federated: bool = True,
             results: Path | None = None, progress: Callable[[str], None] | None = None) -> DemoReport:
    """Boot a federation (or one cluster), put a directory at z1111, get it back, then the rest (the
    meta-analysis's forest plot, table and JSON written to `results`, if given); `progress` hears
    each step as it begins."""
    say = progress or (lambda step: None)
    say("making a sample directory to store" if source is None else f"storing {source}")
    source = source or make_sample_tree(scratch / "input")
    members = init_federation(scratch / "federation", 3 if federated else 1)
    say(f"starting {len(members)} cluster(s) on loopback: " + ", ".join(m.cluster_id for m in members)
        + " (each an API server, a keepstore and a dispatcher)")
    with contextlib.ExitStack() as stack:
        resolver = stack.enter_context(demo_resolver(scratch / "federation", members)) if federated else None
        clusters = [stack.enter_context(ClusterProcess(m.directory)) for m in members]
        say("putting the directory into a collection at z1111, and getting it back")
        cluster = clusters[0]
        client = ApiClient(cluster.api_url, cluster.admin_token or "", insecure=True)
        plan = plan_upload([source])
        started = time.perf_counter()
        record = put_paths(client, [source], name="demo input", plan=plan)
        put_seconds = time.perf_counter() - started
        started = time.perf_counter()
        out = scratch / "output"
        get_collection(client, client.collections.get(record["uuid"]), out)
        get_seconds = time.perf_counter() - started
        keep_urls = {c.config.cluster_id: c.keep_url for c in clusters}
        if federated:
            say("private cohorts, a panel read across clusters, a copy to z3333")
        federation = run_federation(members, keep_urls) if federated else None
        if federated:
            say("the meta-analysis: one CWL workflow, each extract next to its cohort, the merge at z1111")
        meta = run_meta_analysis(members, keep_urls, scratch, results) if federated else None
        if resolver is not None:
            say("the resolver: a DOI resolved to its sites, one site stopped, an analysis launched at the data")
        resolved = run_resolver_demo(members, clusters, resolver) if resolver is not None else None
    mismatches = [name for _, name in plan.files if not filecmp.cmp(source / name, out / name, shallow=False)]
    mismatches += [d for d in plan.directories if not (out / d).is_dir()]
    manifest_text = record["unsigned_manifest_text"]
    blocks = {loc for stream in parse(manifest_text).streams for loc in stream.locators} - {EMPTY_LOCATOR}
    preview = manifest_text.splitlines()[0]
    return DemoReport(
        api_url=cluster.api_url,
        keepstore_url=cluster.keep_url,
        collection_uuid=record["uuid"],
        files=len(plan.files),
        bytes=plan.total_bytes,
        blocks=len(blocks),
        portable_data_hash=record["portable_data_hash"],
        manifest_preview=preview if len(preview) < 160 else preview[:157] + "...",
        put_seconds=put_seconds,
        get_seconds=get_seconds,
        verified=not mismatches,
        mismatches=mismatches,
        federation=federation,
        meta=meta,
        resolver=resolved,
    )
