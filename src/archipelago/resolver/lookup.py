"""`archi resolve`: where an identifier lives, asked of the federation's resolvers (published
identifiers, every site) and of the home cluster itself (its own identifiers, private ones included
for those who may read them; a `keep:` identifier by its content, through the federation). Works
against the home cluster alone when no resolver answers, and says so."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArchipelagoError
from ..sdk.client import ApiClient
from .client import ResolverClient
from .identifiers import DatasetId, parse_identifier
from .liveness import RANK

ENV_RESOLVERS = "ARCHI_RESOLVER_URLS"


@dataclass
class Resolution:
    identifier: str
    scheme: str
    holders: list[dict[str, Any]]
    resolver: str | None  # the resolver that answered; None: the home cluster alone
    resolver_errors: list[str] = field(default_factory=list)
    home: str | None = None

    @property
    def all_down(self) -> bool:
        return bool(self.holders) and all(h["liveness"] == "down" for h in self.holders)

    def as_dict(self) -> dict[str, Any]:
        return {"identifier": self.identifier, "scheme": self.scheme, "holders": self.holders,
                "resolver": self.resolver, "resolver_errors": self.resolver_errors, "home": self.home,
                "all_down": self.all_down, "home_only": self.resolver is None}


def resolver_urls(home: ApiClient | None, given: list[str] | None = None) -> list[str]:
    """--resolver, else $ARCHI_RESOLVER_URLS (comma-separated), else the home cluster's `Resolvers`."""
    if given:
        return given
    if os.environ.get(ENV_RESOLVERS):
        return [u.strip() for u in os.environ[ENV_RESOLVERS].split(",") if u.strip()]
    if home is not None:
        try:
            return list(home.config().get("Resolvers") or [])
        except ArchipelagoError:
            return []
    return []


def _home_holders(home: ApiClient, ident: DatasetId, cluster_id: str) -> list[dict[str, Any]]:
    """What the home cluster itself says: objects here carrying the identifier that the caller may read."""
    found = home.request("GET", "identifiers", {"filters": f'[["identifier","=",{_quoted(ident.text)}]]',
                                                "limit": 100})["items"]
    heads = [row["head_uuid"] for row in found]
    if ident.content is not None:
        with contextlib.suppress(ArchipelagoError):
            heads.append(home.collections.get(ident.content)["uuid"])
    now, out = time.time(), []
    for head in dict.fromkeys(heads):
        resource = "collections" if "-4zz18-" in head or "+" in head else "groups"
        try:
            record = home.request("GET", f"{resource}/{head}")
        except ArchipelagoError:
            continue
        site = cluster_id if "+" in head else head[:5]
        out.append({"site": site, "uuid": record["uuid"] if "+" not in head else head,
                    "kind": "collection" if resource == "collections" else "project", "name": record.get("name"),
                    "pdh": record.get("portable_data_hash"), "size": record.get("file_size_total"),
                    "residency": record.get("residency"), "liveness": "live" if site == cluster_id else "unknown",
                    "last_seen": now if site == cluster_id else None, "seen_by": "home" if site == cluster_id else None,
                    "why": "answered just now" if site == cluster_id else "found through the home cluster",
                    "routes": {"federated_read": f"archi get {record['uuid']} DEST",
                               "launch": f"archi launch {ident.text} --site {site} -- COMMAND"}})
    return out


def _quoted(text: str) -> str:
    import json

    return json.dumps(text)


def resolve(text: str, home: ApiClient | None, urls: list[str]) -> Resolution:
    ident = parse_identifier(text)
    client = ResolverClient(urls) if urls else None
    answer = client.resolve(ident.text) if client else None
    holders = list(answer.data["holders"]) if answer else []
    home_id = None
    if home is not None:
        home_id = str(home.config().get("ClusterID"))
        seen = {(h["site"], h["uuid"]) for h in holders}
        for mine in _home_holders(home, ident, home_id):
            if (mine["site"], mine["uuid"]) in seen:  # the home's word on its own objects; the resolver's routes
                holders = [{**h, **mine, "routes": {**h.get("routes", {}), **mine["routes"]}}
                           if (h["site"], h["uuid"]) == (mine["site"], mine["uuid"]) and mine["site"] == home_id
                           else h for h in holders]
            else:
                holders.append(mine)
    if ident.content is not None:  # keep:PDH names its content: an object holding other content holds not it
        holders = [h for h in holders if h.get("pdh") == ident.content]
    holders.sort(key=lambda h: (RANK.get(h["liveness"], 1.5), h["site"] != home_id, -(h.get("last_seen") or 0)))
    errors = (client.errors if client else ["no resolver configured"]) if answer is None else []
    return Resolution(ident.text, ident.scheme, holders, answer.url if answer else None, errors, home_id)
