"""The dataset resolver's view (resolver/), when this cluster has resolvers: each site's liveness as
the resolver sees it (pushed heartbeats or polls, last seen), and which live sites hold a dataset
identifier typed in the search box. Asked with the resolver's own client (public answers)."""

from __future__ import annotations

from typing import Any

from ..config import ClusterConfig
from ..errors import ArchipelagoError
from ..ids import PDH_RE, UUID_RE
from ..resolver.client import ResolverClient
from ..resolver.identifiers import parse_identifier


class Resolving:
    def __init__(self, config: ClusterConfig):
        urls = list(config.resolver.urls)
        self.client = ResolverClient(urls) if urls else None

    @property
    def configured(self) -> bool:
        return self.client is not None

    def sites(self) -> tuple[dict[str, dict[str, Any]], str | None]:
        """(site -> the resolver's record of it, the resolver that answered or why none did)."""
        if self.client is None:
            return {}, None
        answer = self.client.sites()
        if answer is None:
            return {}, "no resolver answered: " + "; ".join(self.client.errors)
        return {s["site"]: s for s in answer.data.get("sites", [])}, answer.url

    def resolve(self, query: str) -> dict[str, Any] | None:
        """The resolver's answer for a dataset identifier (DOI, ARK, URL, compact id, drs://…), or None
        when the query is not one or there is no resolver."""
        if self.client is None or UUID_RE.fullmatch(query) or PDH_RE.fullmatch(query):
            return None
        try:
            identifier = parse_identifier(query)
        except ArchipelagoError:
            return None
        try:
            answer = self.client.resolve(identifier.text)
        except ArchipelagoError as exc:
            return {"identifier": identifier.text, "holders": [], "error": str(exc)}
        if answer is None:
            return {"identifier": identifier.text, "holders": [],
                    "error": "no resolver answered: " + "; ".join(self.client.errors)}
        return {**answer.data, "resolver": answer.url}
