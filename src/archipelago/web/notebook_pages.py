"""Notebooks next to the data (archipelago.notebook): start one at the cluster that holds a dataset,
open it (on that cluster's API server, through its proxy, which takes the user's token once and
keeps a cookie for the notebook's path), stop it (its notebooks saved as its output) and see it end.
The notebook module speaks to the API over HTTP, as any client: here with the user's own token, to
this cluster's own API server."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..backend.interface import Caller, ListParams, Record
from ..errors import ArchipelagoError, BadRequest, Unavailable
from ..formats.tokens import salt_for
from ..ids import PDH_RE, UUID_RE
from ..notebook.session import KIND, NotebookSession, handoff_scopes, proxy_prefix, start, stop, wait_ready
from ..sdk.client import ApiClient
from .core import Web
from .session import Session

OPEN_WAIT_SECONDS = 60.0  # how long "Open" waits for a lab that is still starting
HANDOFF_HOURS = 12  # the token "Open" puts in the lab's URL lives this long
FIELDS = ["uuid", "name", "state", "created_at", "container_uuid", "mounts", "output_uuid", "priority"]


class NotebookPages:
    def __init__(self, web: Web):
        self.web = web
        api = web.config.api
        host = api.listen.replace("0.0.0.0:", "127.0.0.1:")
        self.own_url = f"{'https' if api.tls_cert else 'http'}://{host}"  # this API server, from inside it

    def routes(self) -> list[BaseRoute]:
        page = self.web.page
        return [Route("/notebooks", page(self.index)),
                Route("/notebooks", page(self.start), methods=["POST"]),
                Route("/notebooks/{uuid}/open", page(self.open), methods=["POST"]),
                Route("/notebooks/{uuid}/stop", page(self.stop), methods=["POST"])]

    def client(self, session: Session) -> ApiClient:
        return ApiClient(self.own_url, session.token, insecure=True)

    def _list(self, caller: Caller) -> list[Record]:
        fed = self.web.federation
        params = ListParams(filters=[["properties.type", "=", KIND]], order=["created_at desc"], limit=100,
                            count="none", select=FIELDS)
        found: list[Record] = []
        answers = fed.each(lambda c: fed.backend_for(c).list(caller, "container_requests", params))
        for cluster, result in answers.items():
            if not isinstance(result, ArchipelagoError):
                found += [{**r, "cluster": cluster} for r in result["items"]]
        for record in found:
            record["container_state"] = None
            if record.get("container_uuid"):
                try:
                    container = fed.backend.get(caller, "containers", record["container_uuid"], ["state"])
                    record["container_state"] = container["state"]
                except ArchipelagoError:
                    pass
            record["datasets"] = {t: m.get("portable_data_hash") or m.get("uuid")
                                  for t, m in (record.get("mounts") or {}).items()
                                  if isinstance(m, dict) and m.get("kind") == "collection"}
        return sorted(found, key=lambda r: r.get("created_at") or "", reverse=True)

    async def index(self, request: Request, session: Session) -> Response:
        notebooks = await self.web.call(self._list, session.caller)
        return self.web.html("notebooks.html", session, "notebooks", notebooks=notebooks,
                             colour=self.web.federation.colour)

    async def start(self, request: Request, session: Session) -> Response:
        form = self.web.form(request)
        dataset = form.get("dataset", "").strip()
        if not (PDH_RE.fullmatch(dataset) or UUID_RE.fullmatch(dataset)):
            raise BadRequest("name the dataset: a collection UUID or portable data hash")
        cluster = form.get("cluster") or (dataset[:5] if UUID_RE.fullmatch(dataset) else self.web.home)
        self.web.federation.backend_for(cluster)  # one of this federation's (404 otherwise)
        try:
            idle = float(form.get("idle") or 30)
        except ValueError:
            raise BadRequest("the idle time is a number of minutes") from None
        await self.web.call(self.web.backend.get, session.caller, "collections", dataset, ["uuid"])  # readable?
        await self.web.call(lambda: start(self.client(session), cluster, {"/data": dataset}, idle_minutes=idle,
                                          name=f"notebook on {dataset}"))
        return RedirectResponse("/notebooks", 303)

    async def _request(self, session: Session, uuid: str) -> Record:
        if not UUID_RE.fullmatch(uuid):
            raise BadRequest(f"{uuid!r} is not a notebook's container request UUID")
        record = await self.web.call(self.web.backend.get, session.caller, "container_requests", uuid,
                                     ["uuid", "state", "properties"])
        if (record.get("properties") or {}).get("type") != KIND:
            raise BadRequest(f"{uuid} is not a notebook")
        return record

    async def open(self, request: Request, session: Session) -> Response:
        """To the lab on its cluster (once it answers: a lab takes a few seconds to start in its
        container), a token for this notebook alone (salted for its cluster) handed over once."""
        uuid = request.path_params["uuid"]
        record = await self._request(session, uuid)
        if record["state"] == "Final":
            raise Unavailable(f"notebook {uuid} has stopped: its notebooks are in its output collection")
        if record["state"] != "Committed":
            raise Unavailable(f"notebook {uuid} was never started ({record['state']})")
        cluster = uuid[:5]
        url = self.web.federation.url(cluster) + proxy_prefix(uuid) + "lab"
        token = await self._handoff_token(session, uuid)
        notebook = NotebookSession(url, uuid, cluster)
        await self.web.call(wait_ready, self.client(session), notebook, token, OPEN_WAIT_SECONDS)
        return RedirectResponse(notebook.login_url(token), 303)

    async def _handoff_token(self, session: Session, uuid: str) -> str:
        """What the lab's URL carries (a browser's history and the cookie keep it): never the session's
        token, but a new one, expiring, that may only read this notebook's request (all its proxy asks)
        and who its user is (what another cluster asks her home of a visitor's token)."""
        expires = (datetime.now(UTC) + timedelta(hours=HANDOFF_HOURS)).isoformat()
        record = await self.web.call(self.web.backend.create, session.caller, "api_client_authorizations",
                                     {"expires_at": expires, "scopes": handoff_scopes(uuid)})
        token = f"v2/{record['uuid']}/{record['api_token']}"
        return token if uuid[:5] == self.web.home else salt_for(token, uuid[:5])

    async def stop(self, request: Request, session: Session) -> Response:
        """Asks the lab to shut down (saving its notebooks) and returns at once; the list shows it end."""
        uuid = request.path_params["uuid"]
        await self._request(session, uuid)
        token = session.token if uuid[:5] == self.web.home else salt_for(session.token, uuid[:5])
        client = self.client(session)
        threading.Thread(target=_stop_quietly, args=(client, uuid, token), name=f"notebook-stop-{uuid}",
                         daemon=True).start()
        return RedirectResponse("/notebooks", 303)


def _stop_quietly(client: ApiClient, uuid: str, token: str) -> Any:
    try:
        return stop(client, uuid, token)
    except ArchipelagoError:
        return None
