"""Raw keepstore requests, as a client of the HTTP protocol would send them."""

from __future__ import annotations

import hashlib
import json

import urllib3

from .clusters import ROOT_TOKEN, USER_TOKEN

http = urllib3.PoolManager(retries=False)


def put(url: str, data: bytes, token: str | None = USER_TOKEN, md5: str | None = None, **headers: str):
    md5 = md5 or hashlib.md5(data).hexdigest()
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return http.request("PUT", f"{url}/{md5}", body=data, headers={**auth, **headers})


def get(url: str, locator: str, token: str | None = USER_TOKEN, method: str = "GET"):
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return http.request(method, f"{url}/{locator}", headers=auth)


def errors(resp) -> str:
    return " ".join(json.loads(resp.data)["errors"])


def index(url: str, prefix: str = "") -> list[str]:
    resp = http.request("GET", f"{url}/index/{prefix}" if prefix else f"{url}/index",
                        headers={"Authorization": f"Bearer {ROOT_TOKEN}"})
    assert resp.status == 200
    text = resp.data.decode()
    assert text.endswith("\n\n") or text == "\n", "index must end with an empty line"
    return [line.split(" ")[0] for line in text.splitlines() if line]
