"""Raw keepstore requests, as a client of the HTTP protocol would send them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import urllib3

from archipelago.errors import Unauthorized

from .clusters import ROOT_TOKEN

http = urllib3.PoolManager(retries=False)
# a keepstore started on its own in tests has no API to validate users' tokens: it stores blocks for
# its root token (what an admin holds), and any token reads what is signed for it
TOKEN = ROOT_TOKEN


def put(url: str, data: bytes, token: str | None = TOKEN, md5: str | None = None, **headers: str):
    md5 = md5 or hashlib.md5(data).hexdigest()
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return http.request("PUT", f"{url}/{md5}", body=data, headers={**auth, **headers})


def get(url: str, locator: str, token: str | None = TOKEN, method: str = "GET"):
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return http.request(method, f"{url}/{locator}", headers=auth)


def stub_validator(*valid: str) -> Callable[[str], None]:
    """A stand-in for the cluster's token validation (keepstore/tokens.py `Authenticate`) for keepstores
    run in process without a cluster: `valid` are the tokens it accepts; any other is refused (401)."""

    def authenticate(token: str) -> None:
        if token not in valid:
            raise Unauthorized("stub validator: not one of the tokens this test made valid")

    return authenticate


def errors(resp) -> str:
    return " ".join(json.loads(resp.data)["errors"])


def index(url: str, prefix: str = "") -> list[str]:
    resp = http.request("GET", f"{url}/index/{prefix}" if prefix else f"{url}/index",
                        headers={"Authorization": f"Bearer {ROOT_TOKEN}"})
    assert resp.status == 200
    text = resp.data.decode()
    assert text.endswith("\n\n") or text == "\n", "index must end with an empty line"
    return [line.split(" ")[0] for line in text.splitlines() if line]
