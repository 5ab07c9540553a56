"""HTTP for GA4GH DRS 1.5 (`/ga4gh/drs/v1`), WES 1.1 (`/ga4gh/wes/v1`) and the file-download
endpoint (`/arvados/v1/collections/{uuid or PDH}/files/{path}`): parse, authenticate, call ga4gh/
(which calls the Backend), render. Tokens come in the Authorization header only (`Bearer`); each
operation is judged against the token's scopes as the Arvados call it makes would be."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..backend.interface import Caller
from ..errors import ArchipelagoError, BadRequest, Forbidden, NotFound, Unauthorized
from ..formats.manifest import Segment
from ..formats.tokens import from_authorization_header
from ..ga4gh.checksums import Checksums, StillComputing, algorithm
from ..ga4gh.drs import Drs
from ..ga4gh.files import RangeNotSatisfiable, byte_range, keep_client, read_range
from ..ga4gh.paths import collection_key, file_path, object_id
from ..ga4gh.served import file_headers
from ..ga4gh.wes import Wes
from ..ga4gh.wes_submit import parse_run_request, submit_run
from ..keep.client import KeepClient
from ..resources.collection_files import FilesQuery

if TYPE_CHECKING:
    from .app import ApiApp

log = logging.getLogger("archipelago.ga4gh")
DRS, WES = "/ga4gh/drs/v1", "/ga4gh/wes/v1"
MAX_FORM_PARTS = 1000


def _ga4gh_error(status: int, message: str) -> JSONResponse:
    response = JSONResponse({"msg": message, "status_code": status}, status_code=status)
    if status == 202:
        response.headers["Retry-After"] = str(StillComputing.retry_after)
    return response


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise BadRequest(f"{name} must be true or false, not {value!r}")
    return value in ("true", "1")


class Ga4ghHttp:
    def __init__(self, api: ApiApp):
        self.api = api
        local = api.backend.this_cluster()
        self.checksums = Checksums(getattr(getattr(local, "db", None), "session", None))
        self._reader: KeepClient | None = None
        cluster = api.config.cluster_id
        self.drs = Drs(api.backend, self.checksums, self.reader, cluster)
        self.wes = Wes(api.backend, self.reader, cluster, sorted(api.config.remote_clusters))

    # ---------------------------------------------------------------- plumbing
    def _services(self) -> list[dict[str, Any]]:
        return list(self.api.backend.this_cluster().keep_services(None)["items"])

    def reader(self) -> KeepClient:
        """One keep client for reads (each read carries its reader's token; no block cache)."""
        if self._reader is None:
            self._reader = keep_client(self._services())
        return self._reader

    def base(self, request: Request) -> str:
        return (self.api.config.api.external_url or f"{request.url.scheme}://{request.url.netloc}").rstrip("/")

    async def caller(self, request: Request, method: str, path: str, required: bool = True) -> Caller | None:
        """The caller by their Bearer token, allowed by its scopes to make the Arvados call `method path`."""
        if not from_authorization_header(request.headers.get("authorization")):
            if not required:
                return None
            raise Unauthorized("no API token: send 'Authorization: Bearer <token>' (a token of this federation)")
        from .app import scope_allows

        caller = await self.api._caller(request, {})
        if not scope_allows(caller.scopes, method, path):
            raise Forbidden(f"this token's scopes do not allow {method} {path}, which this needs")
        return caller

    @staticmethod
    def _allows(caller: Caller, method: str, path: str) -> bool:
        from .app import scope_allows

        return scope_allows(caller.scopes, method, path)

    async def _answer(self, request: Request, work: Callable[[], Awaitable[Response]],
                      error: Callable[[int, str], Response] = _ga4gh_error) -> Response:
        try:
            return await work()
        except ArchipelagoError as exc:
            return error(exc.status, str(exc))
        except Exception:  # a bug: logged with its stack; the client gets the GA4GH error shape
            log.exception("%s %s failed", request.method, request.url.path)
            return error(500, "internal error (logged on the server)")

    # ---------------------------------------------------------------- DRS
    def _drs_target(self, request: Request) -> tuple[str, str | None]:
        """(object id, access id or None) from the raw path: `+` and `/` in an id may come
        percent-encoded (one segment) or bare."""
        raw = request.scope.get("raw_path") or request.url.path.encode()
        rest = raw.decode("utf-8", "replace").split("?", 1)[0].removeprefix(f"{DRS}/objects/")
        parts = [unquote(part) for part in rest.split("/")]
        if len(parts) >= 3 and parts[-2] == "access":
            return "/".join(parts[:-2]), parts[-1]
        return "/".join(parts), None

    async def drs_object(self, request: Request) -> Response:
        async def work() -> Response:
            text, access_id = self._drs_target(request)
            oid = object_id(text)
            if request.method == "OPTIONS":
                return JSONResponse(self.drs.authorizations(None, oid, self.base(request)))
            caller = await self.caller(request, "GET", f"/arvados/v1/collections/{oid.pdh}")
            assert caller is not None
            if access_id is not None:
                return JSONResponse(await self.api._call(self.drs.access, caller, oid, access_id, self.base(request)))
            extra = tuple(algorithm(name) for name in request.query_params.getlist("checksum"))
            return JSONResponse(await self.api._call(self.drs.object, caller, oid, self.base(request),
                                                     _flag(request, "expand"), extra))
        return await self._answer(request, work)

    async def drs_service_info(self, request: Request) -> Response:
        async def work() -> Response:
            return JSONResponse(self.drs.service_info(self.base(request)))
        return await self._answer(request, work)

    # ---------------------------------------------------------------- WES
    async def wes_service_info(self, request: Request) -> Response:
        async def work() -> Response:
            caller = await self.caller(request, "GET", "/arvados/v1/container_requests", required=False)
            return JSONResponse(await self.api._call(self.wes.service_info, self.base(request), caller))
        return await self._answer(request, work)

    async def wes_runs(self, request: Request) -> Response:
        async def work() -> Response:
            if request.method == "POST":
                return JSONResponse({"run_id": await self._submit(request)})
            caller = await self.caller(request, "GET", "/arvados/v1/container_requests")
            query = request.query_params
            return JSONResponse(await self.api._call(self.wes.list_runs, caller, query.get("page_size"),
                                                     query.get("page_token")))
        return await self._answer(request, work)

    async def _submit(self, request: Request) -> str:
        caller = await self.caller(request, "POST", "/arvados/v1/container_requests")
        assert caller is not None
        if not self._allows(caller, "POST", "/arvados/v1/collections"):
            raise Forbidden("this token's scopes do not allow POST /arvados/v1/collections, which this needs")
        from .app import _body

        raw = await _body(request, self.api.config.api.max_request_bytes)
        fields: dict[str, Any] = {}
        files: list[tuple[str, bytes]] = []
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media == "application/json":
            import orjson

            try:
                fields = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise BadRequest(f"request body is not valid JSON: {exc}") from None
            if not isinstance(fields, dict):
                raise BadRequest("request body must be a JSON object (a RunRequest)")
        elif media in ("multipart/form-data", "application/x-www-form-urlencoded"):
            await self._form(request, raw, fields, files)
        else:
            raise BadRequest(f"a run request is multipart/form-data (or JSON), not {media or 'an empty body'}")
        run = parse_run_request(fields, files)
        keep = keep_client(self._services())
        keep.token = caller.token
        return await self.api._call(submit_run, self.api.backend, caller, keep, run)

    @staticmethod
    async def _form(request: Request, raw: bytes, fields: dict[str, Any], files: list[tuple[str, bytes]]) -> None:
        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": raw, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=MAX_FORM_PARTS, max_fields=MAX_FORM_PARTS)
        except MultiPartException as exc:
            raise BadRequest(f"request body is not a valid form: {exc.message}") from None
        for key, value in form.multi_items():
            if key == "workflow_attachment":
                if not isinstance(value, UploadFile):
                    raise BadRequest("workflow_attachment must be a file part (with a filename)")
                files.append((value.filename or "", await value.read()))
                continue
            text = (await value.read()).decode("utf-8", "replace") if isinstance(value, UploadFile) else value
            fields[key] = [fields[key], text] if key in fields else text

    async def wes_run(self, request: Request) -> Response:
        async def work() -> Response:
            run_id = request.path_params["run_id"]
            action = request.path_params.get("action")
            path = f"/arvados/v1/container_requests/{run_id}"
            if action == "cancel":
                caller = await self.caller(request, "PUT", path)
                return JSONResponse(await self.api._call(self.wes.cancel, caller, run_id))
            caller = await self.caller(request, "GET", path)
            if action == "status":
                return JSONResponse(await self.api._call(self.wes.status, caller, run_id))
            if action == "tasks":
                task_id, query = request.path_params.get("task_id"), request.query_params
                if task_id is not None:
                    return JSONResponse(await self.api._call(self.wes.task, caller, run_id, task_id,
                                                             self.base(request)))
                return JSONResponse(await self.api._call(self.wes.tasks, caller, run_id, self.base(request),
                                                         query.get("page_size"), query.get("page_token")))
            if action is not None:
                raise NotFound(f"no such WES path: {request.url.path}")
            return JSONResponse(await self.api._call(self.wes.run_log, caller, run_id, self.base(request)))
        return await self._answer(request, work)

    # ---------------------------------------------------------------- file download
    async def download(self, request: Request) -> Response:
        async def work() -> Response:
            key = collection_key(request.path_params["collection"])
            path = file_path(request.path_params["path"])
            caller = await self.caller(request, "GET", request.url.path)
            assert caller is not None
            # the file's segments alone, from the index of the manifest (never the whole manifest)
            found = await self.api._call(self.api.backend.collection_files, caller, key, FilesQuery(path=path))
            if found["type"] != "file":
                raise BadRequest(f"{path or 'the top'} of {key} is a directory: name a file in it")
            item = found["items"][0]
            segments: list[Segment] = [(locator, offset, length) for locator, offset, length in item["segments"]]
            size = item["size"]
            chosen = byte_range(request.headers.get("range"), size)
            start, end = chosen or (0, size)
            headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start),
                       "ETag": f'"{found["portable_data_hash"]}/{quote(path)}"', **file_headers(item["name"])}
            if chosen is not None:
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
            status = 206 if chosen is not None else 200
            if request.method == "HEAD" or start == end:
                return Response(b"", status, headers)
            pieces = read_range(self.reader(), caller.token, segments, start, end)
            first = await self.api._call(next, pieces, b"")  # a refused or missing block is an error, not a cut

            async def body() -> AsyncIterator[bytes]:
                piece = first
                while piece:
                    yield piece
                    piece = await self.api._call(next, pieces, b"")

            return StreamingResponse(body(), status, headers)

        from .app import error

        try:
            return await work()
        except ArchipelagoError as exc:
            response = error(exc.status, str(exc))
            if isinstance(exc, RangeNotSatisfiable):
                response.headers["Content-Range"] = f"bytes */{exc.size}"
            return response

    def routes(self) -> list[Route]:
        return [
            Route(f"{DRS}/service-info", self.drs_service_info, methods=["GET"]),
            Route(f"{DRS}/objects/{{rest:path}}", self.drs_object, methods=["GET", "OPTIONS"]),
            Route(f"{WES}/service-info", self.wes_service_info, methods=["GET"]),
            Route(f"{WES}/runs", self.wes_runs, methods=["GET", "POST"]),
            Route(f"{WES}/runs/{{run_id}}", self.wes_run, methods=["GET"]),
            Route(f"{WES}/runs/{{run_id}}/cancel", self._with_action("cancel"), methods=["POST"]),
            Route(f"{WES}/runs/{{run_id}}/status", self._with_action("status"), methods=["GET"]),
            Route(f"{WES}/runs/{{run_id}}/tasks", self._with_action("tasks"), methods=["GET"]),
            Route(f"{WES}/runs/{{run_id}}/tasks/{{task_id}}", self._with_action("tasks"), methods=["GET"]),
            Route("/arvados/v1/collections/{collection}/files/{path:path}", self.download, methods=["GET", "HEAD"]),
        ]

    def _with_action(self, action: str) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            request.path_params["action"] = action
            return await self.wes_run(request)
        return handler
