"""The resolver's logic, without HTTP: apply what sites push (or what polls bring), judge each site's
liveness, answer "who holds this identifier" and, for member sites, "who holds this PDH".

Who learns what (SECURITY.md): the resolver only ever holds what sites publish — identifiers a
writer of the object marked `published`, with the object's UUID, PDH, size and residency — and the
PDHs each site holds. Anyone may resolve a published identifier; PDH holdings are told only to
member sites (a signed request), which then ask the holders themselves, where permissions and
residency apply as always. Unpublished identifiers never leave their site.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from ..errors import BadRequest, Unavailable
from ..ids import PDH_RE, UUID_RE
from .config import ResolverConfig
from .identifiers import parse_identifier
from .liveness import Heard, Verdict, judge
from .signing import NonceMemory, Signed
from .store import Store

MAX_KEYS = 20_000  # identifiers plus PDHs in one push
KINDS = ("collection", "project")


def _text(value: Any, limit: int) -> bool:
    return value is None or (isinstance(value, str) and len(value) <= limit)


def _record(record: Any, site: str) -> bool:
    """A published object as a site must describe it: one of its own, each field of its kind (what
    answers and launches rely on: a `pdh` that is no PDH never reaches them)."""
    if not isinstance(record, dict):
        return False
    uuid, pdh, size = record.get("uuid"), record.get("pdh"), record.get("size")
    return (isinstance(uuid, str) and UUID_RE.fullmatch(uuid) is not None and uuid[:5] == site
            and record.get("kind") in KINDS
            and (pdh is None or (isinstance(pdh, str) and len(pdh) <= 64 and PDH_RE.fullmatch(pdh) is not None))
            and (size is None or (type(size) is int and 0 <= size < 1 << 63))
            and _text(record.get("name"), 1024) and _text(record.get("residency"), 32))


def _batch(body: Any, site: str) -> tuple[int | None, int, dict[str, list[dict[str, Any]]], dict[str, bool]]:
    """A push's or a feed's changes, checked: (after, to, identifiers, contents)."""
    if not isinstance(body, dict):
        raise BadRequest("a push is a JSON object")
    after, to = body.get("after"), body.get("to", 0)
    identifiers, contents = body.get("identifiers") or {}, body.get("contents") or {}
    if not (after is None or isinstance(after, int)) or not isinstance(to, int) or (after is not None and to < after):
        raise BadRequest("'after' and 'to' must be whole numbers, to >= after")
    if not isinstance(identifiers, dict) or not isinstance(contents, dict):
        raise BadRequest("'identifiers' and 'contents' must be objects")
    if len(identifiers) + len(contents) > MAX_KEYS:
        raise BadRequest(f"at most {MAX_KEYS} identifiers and PDHs in one push")
    for ident, records in identifiers.items():
        if parse_identifier(ident).text != ident or not isinstance(records, list) or \
                not all(_record(r, site) for r in records):
            raise BadRequest(f"identifier {ident[:80]!r}: a normal-form identifier and a list of this site's "
                             "objects (each with its uuid, kind, and pdh, size, name and residency or null)")
    if not all(PDH_RE.fullmatch(pdh) and isinstance(held, bool) for pdh, held in contents.items()):
        raise BadRequest("'contents' maps PDHs to true (held) or false (no longer held)")
    return after, to, identifiers, contents


@dataclass
class ResolverService:
    config: ResolverConfig
    store: Store
    heard: dict[str, Heard] = field(default_factory=dict)
    nonces: NonceMemory = field(default_factory=NonceMemory)

    def __post_init__(self) -> None:
        self.last_seq: dict[str, int] = {}
        for site, row in self.store.sites().items():
            self.heard[site] = Heard(row.push_ok, row.poll_ok, row.poll_failed, row.poll_error)
            self.last_seq[site] = row.last_seq
        self.store.ensure_sites(self.config.sites)
        self.windows = {site: self.config.windows(site) for site in self.config.sites}
        for site in self.config.sites:
            self.heard.setdefault(site, Heard())
            self.last_seq.setdefault(site, 0)
        self._pushing = threading.BoundedSemaphore(self.config.max_concurrent_pushes)
        self.dirty: set[str] = set()

    # ------------------------------------------------------------ sites telling us
    def push(self, signed: Signed, body: Any) -> dict[str, Any]:
        """A site's push: its changes since `after` (and, by arriving, its heartbeat)."""
        after, to, identifiers, contents = _batch(body, signed.site)
        if not self._pushing.acquire(blocking=False):  # a herd: refuse quickly, the site backs off and retries
            raise Unavailable("too many pushes at once; retry with backoff")
        try:
            last = self.store.apply(signed.site, after, to, identifiers, contents, signed.at)
        finally:
            self._pushing.release()
        self.last_seq[signed.site] = last
        self.heard.setdefault(signed.site, Heard()).push_ok = time.time()
        self.dirty.add(signed.site)
        return {"last_seq": last}

    def polled(self, site: str, body: Any) -> None:
        """What a poll of the site's feed brought: its changes, and that it answered."""
        after, to, identifiers, contents = _batch(body, site)
        if identifiers or contents or after is None or to != self.last_seq.get(site):  # a quiet site costs no write
            self.last_seq[site] = self.store.apply(site, after, to, identifiers, contents)
        self.heard.setdefault(site, Heard()).poll_ok = time.time()
        self.dirty.add(site)

    def poll_failed(self, site: str, error: str) -> None:
        heard = self.heard.setdefault(site, Heard())
        heard.poll_failed, heard.poll_error = time.time(), error[:300]
        self.dirty.add(site)

    def save(self) -> None:
        """What was heard since the last save (only the sites heard from: a second's worth)."""
        sites, self.dirty = self.dirty, set()
        if sites:
            self.store.save_heard({site: Heard(**vars(self.heard[site])) for site in sites if site in self.heard})

    # ------------------------------------------------------------ answers
    def verdict(self, site: str, now: float | None = None) -> Verdict:
        if site not in self.config.sites:
            return Verdict("dropped", None, None, "no longer a site of this resolver")
        return judge(self.windows[site], self.heard.get(site, Heard()), time.time() if now is None else now)

    def _routes(self, site: str, identifier: str, record: dict[str, Any]) -> dict[str, str]:
        base = self.config.sites[site].url
        routes = {"launch": f"archi launch {identifier} --site {site} -- COMMAND"}
        if record.get("kind") == "collection":
            routes["federated_read"] = f"archi get {record['uuid']} DEST"
            routes["api"] = f"{base}/arvados/v1/collections/{record['uuid']}"
            if record.get("pdh"):
                routes["drs"] = f"drs://{urlsplit(base).netloc}/{quote(record['pdh'], safe='')}"
        return routes

    def resolve(self, text: str) -> dict[str, Any]:
        """Every live-enough site holding a published identifier: live first, never a dead one first."""
        ident = parse_identifier(text)
        records = self.store.registrations(ident.text)
        if ident.content is not None:  # keep:PDH names its content: an object with other content is no holder
            records = [r for r in records if r["pdh"] == ident.content]
            named = {(r["site"], r["uuid"]) for r in records}
            records += [r for r in self.store.published_content(ident.content) if (r["site"], r["uuid"]) not in named]
        now = time.time()
        ranked = []
        for record in records:
            verdict = self.verdict(record["site"], now)
            if verdict.status != "dropped":
                ranked.append((verdict.rank, -(verdict.last_seen or 0), record["site"], {
                    **record, "liveness": verdict.status, "last_seen": verdict.last_seen, "seen_by": verdict.by,
                    "why": verdict.reason, "routes": self._routes(record["site"], ident.text, record)}))
        holders = [entry[3] for entry in sorted(ranked, key=lambda e: e[:3])]
        return {"identifier": ident.text, "scheme": ident.scheme, "holders": holders,
                "all_down": bool(holders) and all(h["liveness"] == "down" for h in holders)}

    def holders(self, signed: Signed, pdh: str) -> dict[str, Any]:
        """For a member site's PDH lookup: which sites hold it (not dropped, live first). Which sites
        this resolver covers is in `sites()`: an answer's size does not grow with the federation."""
        self.nonces.check(signed)
        if not PDH_RE.fullmatch(pdh):
            raise BadRequest(f"{pdh[:80]!r} is not a portable data hash")
        now = time.time()
        found = [(site, self.verdict(site, now)) for site in self.store.holders(pdh)]
        found.sort(key=lambda f: (f[1].rank, -(f[1].last_seen or 0)))
        return {"pdh": pdh, "holders": [{"site": s, "liveness": v.status} for s, v in found if v.status != "dropped"]}

    def sites(self) -> list[dict[str, Any]]:
        now = time.time()
        out = []
        for site, settings in sorted(self.config.sites.items()):
            windows, heard, verdict = self.config.windows(site), self.heard.get(site, Heard()), self.verdict(site, now)
            out.append({"site": site, "url": settings.url, "mode": windows.mode, "live_window": windows.live_window,
                        "stale_window": windows.stale_window, "drop_after": windows.drop_after,
                        "poll_interval": windows.poll_interval if windows.polled else None,
                        "liveness": verdict.status, "why": verdict.reason, "last_seen": verdict.last_seen,
                        "seen_by": verdict.by, "last_push": heard.push_ok, "last_poll": heard.poll_ok,
                        "last_poll_failure": heard.poll_failed, "poll_error": heard.poll_error,
                        "last_seq": self.last_seq.get(site, 0)})
        return out
