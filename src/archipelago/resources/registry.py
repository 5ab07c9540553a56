"""Every resource the API serves, by name. Adding one: a module with a `Resource` subclass, listed here."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..config import ClusterConfig
from ..errors import NotFound
from ..ids import INFIX
from .base import Resource
from .collections import Collections
from .container_requests import ContainerRequests
from .containers import Containers
from .groups import Groups
from .identifiers import Identifiers
from .links import Links
from .tokens import Tokens
from .users import Users
from .workflows import Workflows

RESOURCE_TYPES: tuple[type[Resource], ...] = (Users, Tokens, Groups, Links, Collections, Workflows,
                                              ContainerRequests, Containers, Identifiers)
# each resource's class by name: its properties, for those that need no database (the HTTP layer, the router)
TYPES: dict[str, type[Resource]] = {kind.name: kind for kind in RESOURCE_TYPES}


class Registry:
    def __init__(self, config: ClusterConfig):
        self.resources = {kind.name: kind(config) for kind in RESOURCE_TYPES}
        # the objects that can own others (or be shared), by the type infix of their UUIDs
        self._owners = {r.infix: r for r in self.resources.values() if r.can_own}
        self._by_infix = {r.infix: r for r in self.resources.values()}
        self.config = config
        links = self.resources[Links.name]
        assert isinstance(links, Links)
        links.owner_of = self.owner_of  # who may see a permission link depends on its head's owner

    def __getitem__(self, name: str) -> Resource:
        try:
            return self.resources[name]
        except KeyError:
            raise NotFound(f"no such resource type {name!r}") from None

    def _gateways(self) -> set[str]:
        """Gateways come from the configuration, not a table. They can be shared (auth/gateways.py),
        and the system user owns them, so only admins manage who may register through them."""
        return {str(g.uuid) for g in self.config.gateways}

    def exists(self, session: Session, uuid: str) -> bool | None:
        """Whether an object of this cluster exists (None: a UUID of no type served here)."""
        if uuid[6:11] == INFIX["KeepService"]:
            return uuid in self._gateways()  # keepstores cannot be shared: only gateways are objects here
        resource = self._by_infix.get(uuid[6:11])
        return None if resource is None else session.get(resource.model, uuid) is not None

    def owner_of(self, session: Session, uuid: str) -> str | None:
        """Who owns an object; its UUID's infix names its table (one query, not one per table)."""
        if uuid in self._gateways():
            return self.config.system_user_uuid
        resource = self._owners.get(uuid[6:11])
        owner: Any = None if resource is None else session.scalar(resource.owner_query(uuid))
        return owner
