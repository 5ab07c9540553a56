"""The end of `make demo`: the resolver. A reference dataset with a DOI is held at z2222 and z3333
and published; a researcher at z1111 resolves the DOI to both sites, live; z3333 is stopped, the
resolver's next poll marks it down and the answer changes (z2222 first, z3333 down with when it was
last seen); then the researcher launches an analysis at the data (`archi launch`): it runs at the
live holder and only its result comes home."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..formats.tokens import salt_token
from ..resolver.launch import choose, launch, reachable_from
from ..resolver.lookup import resolve
from ..sdk.client import ApiClient
from ..sdk.collection import Collection
from ..sdk.copy import FederationCopy
from .federation import FederationMember
from .processes import ClusterProcess
from .resolver import RESOLVER_DIR, ResolverProcess, init_resolver

DOI = "doi:10.5555/archipelago-demo-panel"
WINDOWS = {"poll_interval": 1.0, "live_window": 10.0, "stale_window": 30.0}  # a demo's patience, not a site's
ROWS = 5000


@dataclass
class ResolverReport:
    resolver: str
    identifier: str
    before: list[tuple[str, str]]  # (site, liveness), in the resolver's order
    stopped: str
    after: list[tuple[str, str]]
    down_after_seconds: float
    launched_at: str
    launch_reasons: list[str]
    request: str
    exit_code: int | None
    home_output: str | None
    result: str
    result_bytes_home: int

    @property
    def ok(self) -> bool:
        return (sorted(s for s, live in self.before if live == "live") == ["z2222", "z3333"]
                and self.after == [("z2222", "live"), (self.stopped, "down")] and self.launched_at == "z2222"
                and self.exit_code == 0 and self.result.strip() == str(ROWS))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def text(self) -> str:
        show = ", ".join
        return (f"resolver       {self.resolver}: {self.identifier} held by "
                f"{show(f'{s} ({live})' for s, live in self.before)}\n"
                f"site stopped   {self.stopped}: marked down by the resolver's poll after "
                f"{self.down_after_seconds:.1f} s; now {show(f'{s} ({live})' for s, live in self.after)}\n"
                f"launch         `archi launch {self.identifier} -- wc -l` ran at {self.launched_at} "
                f"({'; '.join(self.launch_reasons[:2])}): {self.request} exit {self.exit_code}\n"
                f"result home    {self.home_output}: {self.result.strip()} rows ({self.result_bytes_home} bytes "
                "came home, the dataset none)")


@contextmanager
def demo_resolver(federation_dir: Path, members: list[FederationMember]) -> Iterator[ResolverProcess]:
    """The federation's resolver, quick to notice a stopped site (polls every second), started before
    the clusters so their first push finds it."""
    path = init_resolver(federation_dir / RESOLVER_DIR, [(m.cluster_id, m.directory, m.api_url) for m in members],
                         windows=WINDOWS)
    with ResolverProcess(path) as process:
        yield process


def _holders(home: ApiClient, resolver: ResolverProcess) -> list[tuple[str, str]]:
    return [(h["site"], h["liveness"]) for h in resolve(DOI, home, [resolver.url]).holders]


def _wait(what: str, check: Any, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the demo waited {seconds:.0f} s for {what}")
        time.sleep(0.2)
    return result


def run_resolver_demo(members: list[FederationMember], clusters: list[ClusterProcess],
                      resolver: ResolverProcess) -> ResolverReport:
    admins = {m.cluster_id: ApiClient(m.api_url, m.admin_token, insecure=True) for m in members}
    home = admins["z1111"]
    panel = Collection(admins["z2222"])
    panel.write("panel.csv", b"".join(b"%d,%s\n" % (n, os.urandom(8).hex().encode()) for n in range(ROWS)))
    held = panel.save_new("reference panel (published)")
    mirror = FederationCopy(admins["z2222"], "z3333").copy(held["uuid"]).top.uuid  # z3333 holds it too
    ApiClient(admins["z2222"].base, salt_token(home.token, "z2222"), insecure=True).users.current()  # known there
    admins["z2222"].links.create({"link_class": "permission", "name": "can_read", "head_uuid": held["uuid"],
                                  "tail_uuid": home.users.current()["uuid"]})  # z1111's analyst may read it there
    for cid, uuid in (("z2222", held["uuid"]), ("z3333", mirror)):
        admins[cid].request("POST", "identifiers", body={"identifier": {"head_uuid": uuid, "identifier": DOI,
                                                                         "published": True}})
    def both_live() -> list[tuple[str, str]] | None:
        found = _holders(home, resolver)
        return found if sorted(s for s, live in found if live == "live") == ["z2222", "z3333"] else None

    def one_down() -> list[tuple[str, str]] | None:
        found = _holders(home, resolver)
        return found if found == [("z2222", "live"), ("z3333", "down")] else None

    before = _wait("both holders live at the resolver", both_live)
    stopped = next(c for c in clusters if c.config.cluster_id == "z3333")
    stopped.stop()
    started = time.monotonic()
    after = _wait("the resolver to mark z3333 down", one_down)
    down_after = time.monotonic() - started
    home_id, reachable = reachable_from(home)
    plan = choose(resolve(DOI, home, [resolver.url]), home_id, reachable)
    request = launch(home, plan, "command", command=["sh", "-c", "wc -l < /data/panel.csv > rows.txt"])
    def finished() -> dict[str, Any] | None:
        record = home.container_requests.get(request["uuid"])
        return record if record["state"] == "Final" else None

    final = _wait("the launched container", finished, 120)
    container = home.containers.get(final["container_uuid"]) if final.get("container_uuid") else {}
    copied = FederationCopy(home, home_id).copy(final["output_uuid"]) if final.get("output_uuid") else None
    result = Collection(home, copied.top.uuid).read("rows.txt").decode() if copied else ""
    return ResolverReport(
        resolver=resolver.url, identifier=DOI, before=before, stopped="z3333", after=after,
        down_after_seconds=down_after, launched_at=plan.site, launch_reasons=plan.reasons, request=request["uuid"],
        exit_code=container.get("exit_code"), home_output=copied.top.uuid if copied else None, result=result,
        result_bytes_home=copied.bytes_sent if copied else 0)
