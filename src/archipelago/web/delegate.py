"""Downloads and image previews through the API's own file-download endpoint
(`/arvados/v1/collections/{uuid or PDH}/files/{path}`, byte ranges; api/ga4gh.py): the browser's
request is handed to it as if made with the user's token in the Authorization header — the same
checks, scopes and residency as any client gets — and its answer goes back with the headers a
browser needs: a download is an attachment (never rendered on this origin), a preview only the
image type it was judged to be, sandboxed."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

DROPPED = {b"authorization", b"cookie"}


class ThroughApi(Response):
    def __init__(self, path: str, token: str, headers: dict[str, str]):
        super().__init__()
        self.api_path, self.token, self.extra = path, token, headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        inner: dict[str, Any] = {
            **scope, "path": self.api_path, "raw_path": quote(self.api_path).encode(), "query_string": b"",
            "headers": [(k, v) for k, v in scope["headers"] if k.lower() not in DROPPED]
            + [(b"authorization", f"Bearer {self.token}".encode())],
        }
        replaced = {k.lower().encode() for k in self.extra}

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in replaced]
                headers += [(k.lower().encode(), v.encode("latin-1")) for k, v in self.extra.items()]
                message = {**message, "headers": headers}
            await send(message)

        await scope["app"](inner, receive, answer)

