"""The run pages: the runs a user can see, one run as a graph of its steps coloured by cluster (live
through an EventSource), each step with its container, times, exit code, inputs, outputs and logs
(tailed while it runs), bytes moved, and cancelling or running it again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..cwl.tags import RUN
from ..errors import ArchipelagoError, BadRequest
from ..ids import UUID_RE
from .core import Web
from .graph import NODE_H, NODE_W, layout
from .live import Changes
from .runs import LOG_FILES, Run, Runs, run_key
from .session import Session

POLL_SECONDS = 10.0  # the stream recomputes this often even when no change was heard (a peer without a stream)


def structure(run: Run) -> str:
    """What, when it changes, makes the page fetch the run's body anew (new steps, new bytes moved)."""
    shape = [sorted(s.uuid for s in run.steps), run.moved(), sorted(run.unreachable), run.done, run.finished,
             [s.read_from is not None for s in run.steps]]
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


class RunPages:
    def __init__(self, web: Web):
        self.web = web
        self.runs = Runs(web.federation)

    def routes(self) -> list[BaseRoute]:
        page = self.web.page
        return [
            Route("/runs", page(self.index)),
            Route("/runs/{run}", page(self.run)),
            Route("/runs/{run}/live", page(self.live, kind="text")),
            Route("/runs/{run}/steps/{uuid}", page(self.step)),
            Route("/runs/{run}/steps/{uuid}/log/{name}", page(self.log, kind="text")),
            Route("/runs/{run}/cancel", page(self.cancel), methods=["POST"]),
            Route("/runs/{run}/rerun", page(self.rerun), methods=["POST"]),
            Route("/requests/{uuid}", page(self.request)),
            Route("/processes/{uuid}", page(self.request)),  # Workbench 2's path: Arvados clients link it
        ]

    async def index(self, request: Request, session: Session) -> Response:
        runs, unreachable = await self.web.call(self.runs.list_runs, session.caller)
        return self.web.html("runs.html", session, "runs", runs=runs, unreachable=unreachable,
                             colour=self.web.federation.colour)

    def _context(self, run: Run, report: dict[str, Any] | None = None) -> dict[str, Any]:
        graph = layout(run, self.web.federation.colour)
        moved = run.moved()
        return {"run": run, "graph": graph, "report": report, "node_w": NODE_W, "node_h": NODE_H, "moved": moved,
                "moved_max": max(moved.values(), default=0), "structure": structure(run),
                "colour": self.web.federation.colour, "clusters": self.web.federation.clusters}

    async def run(self, request: Request, session: Session) -> Response:
        run = await self.web.call(self.runs.gather, session.caller, run_key(request.path_params["run"]))
        report = await self.web.call(self.runs.report, session.caller, run)
        if request.query_params.get("part") == "body":
            return self.web.html("run_body.html", session, "runs", **self._context(run, report))
        return self.web.html("run.html", session, "runs", **self._context(run, report))

    async def live(self, request: Request, session: Session) -> Response:
        """Server-sent events: `state` (the run as JSON) whenever it changed, `end` once it has finished."""
        run_id = run_key(request.path_params["run"])
        web, token = self.web, session.token
        await web.call(self.runs.gather, session.caller, run_id, False)  # none to be seen: 404, not an empty stream
        changes = Changes(web.events, web.federation.remotes, session.caller)

        async def events() -> AsyncIterator[bytes]:
            changes.start()
            last = ""
            settled = 0
            try:
                yield b"retry: 3000\n\n"
                while True:
                    try:
                        caller = await web.caller_for(token)  # a revoked or expired token ends the stream
                        run = await web.call(self.runs.gather, caller, run_id)
                    except ArchipelagoError as exc:
                        yield f"event: failure\ndata: {json.dumps(str(exc))}\n\n".encode()
                        return
                    state = json.dumps({**run.as_dict(), "structure": structure(run)})
                    yield f"event: state\ndata: {state}\n\n".encode() if state != last else b": unchanged\n\n"
                    last = state
                    counted = all(s.read_from is not None for s in run.steps if s.final and s.log)
                    settled = settled + 1 if run.finished else 0
                    if run.finished and (counted or settled > 3):
                        yield b"event: end\ndata: {}\n\n"
                        return
                    await changes.wait(1.0 if run.finished else POLL_SECONDS)
            finally:
                changes.close()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={**web.render.headers(), "X-Accel-Buffering": "no"})

    async def step(self, request: Request, session: Session) -> Response:
        run_id = run_key(request.path_params["run"])
        uuid = request.path_params["uuid"]
        if not UUID_RE.fullmatch(uuid):
            raise BadRequest(f"{uuid!r} is not a container request UUID")
        run, step = await self.web.call(self.runs.step, session.caller, run_id, uuid)
        logs: dict[str, str] = {}
        if step.log:
            for name in LOG_FILES:
                try:
                    data = await self.web.call(self.runs.log_tail, session.caller, step.log, name)
                    logs[name] = data.decode("utf-8", "replace")
                except ArchipelagoError as exc:
                    logs[name] = f"({exc})" if exc.status != 404 else ""
        return self.web.html("step.html", session, "runs", run=run, step=step, logs=logs,
                             colour=self.web.federation.colour)

    async def log(self, request: Request, session: Session) -> Response:
        """The end of one log file of a step (what the step page shows while tailing)."""
        run_id = run_key(request.path_params["run"])
        _, step = await self.web.call(self.runs.step, session.caller, run_id, request.path_params["uuid"])
        if not step.log:
            return PlainTextResponse("", headers=self.web.render.headers())
        data = await self.web.call(self.runs.log_tail, session.caller, step.log, request.path_params["name"])
        return PlainTextResponse(data.decode("utf-8", "replace"), headers={**self.web.render.headers(),
                                                                            "X-Log": step.log})

    async def cancel(self, request: Request, session: Session) -> Response:
        run_id = run_key(request.path_params["run"])
        await self.web.call(self.runs.cancel, session.caller, run_id)
        return RedirectResponse(f"/runs/{run_id}", 303)

    async def rerun(self, request: Request, session: Session) -> Response:
        fresh = await self.web.call(self.runs.rerun, session.caller, run_key(request.path_params["run"]))
        return RedirectResponse(f"/runs/{fresh}", 303)

    async def request(self, request: Request, session: Session) -> Response:
        """A container request by UUID (from the search box, or `{Workbench2.ExternalURL}processes/UUID` as
        arvados-cwl-runner prints it): its run's step page if it belongs to a run."""
        uuid = request.path_params["uuid"]
        if not UUID_RE.fullmatch(uuid):
            raise BadRequest(f"{uuid!r} is not a container request UUID")
        record = await self.web.call(self.web.backend.get, session.caller, "container_requests", uuid,
                                     ["uuid", "properties"])
        run_id = (record.get("properties") or {}).get(RUN)
        if not run_id:
            raise BadRequest(f"{uuid} is not part of a workflow run (archi run); `archi container show {uuid}` "
                             "shows it")
        return RedirectResponse(f"/runs/{run_key(str(run_id))}/steps/{uuid}", 303)
