"""The data movement page (bytes between each pair of clusters, by the keepstores' counters and by
the runs' own counts; residency refusals) and the sites page (the federation's clusters and their
health)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..backend.interface import Caller
from ..errors import ArchipelagoError
from ..refusals import Refusal, recent_refusals
from .core import Web
from .movement import Movement
from .resolving import Resolving
from .runs import Runs
from .session import Session

RECENT_RUNS = 5


class SitePages:
    def __init__(self, web: Web):
        self.web = web
        self.movement = Movement(web.federation)
        self.runs = Runs(web.federation)
        self.resolving = Resolving(web.config)

    def routes(self) -> list[BaseRoute]:
        page = self.web.page
        return [Route("/movement", page(self.moved)), Route("/sites", page(self.sites))]

    def _recent(self, caller: Caller) -> list[dict[str, Any]]:
        listed, _ = self.runs.list_runs(caller)
        recent = []
        for entry in listed[:RECENT_RUNS]:
            try:
                run = self.runs.gather(caller, entry["id"])
            except ArchipelagoError:
                continue
            recent.append({"id": run.id, "workflow": run.workflow, "state": run.state, "moved": run.moved()})
        return recent

    @staticmethod
    def refusals(caller: Caller) -> list[Refusal]:
        """This cluster's residency refusals: all of them for its admins, a user's own for a user."""
        return [r for r in recent_refusals() if caller.is_admin or r.reader.split(" ", 1)[0] == caller.user_uuid]

    async def moved(self, request: Request, session: Session) -> Response:
        counters = await self.web.call(self.movement.counters, session.caller)
        pairs = self.movement.pairs(counters)
        recent = await self.web.call(self._recent, session.caller)
        largest = max([*pairs.values(), *(n for r in recent for n in r["moved"].values())], default=0)
        return self.web.html("movement.html", session, "movement", counters=counters, pairs=pairs, recent=recent,
                             largest=largest, colour=self.web.federation.colour, refusals=self.refusals(session.caller),
                             admin=session.caller.is_admin)

    async def sites(self, request: Request, session: Session) -> Response:
        health = await self.web.call(self.movement.health, session.caller)
        seen, resolver = await self.web.call(self.resolving.sites)
        return self.web.html("sites.html", session, "sites", health=health, home=self.web.home, seen=seen,
                             resolver=resolver, resolving=self.resolving.configured,
                             login_cluster=self.web.config.login.login_cluster, colour=self.web.federation.colour)
