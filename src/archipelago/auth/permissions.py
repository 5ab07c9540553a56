"""Who may read, write or manage what.

The Arvados model, computed per request: a user manages what they own; a permission link
(`can_read` < `can_write` < `can_manage`) from a user, or from a role group the user belongs to,
grants that level on its head object; a level on a project flows down to everything the project
owns, sub-projects included; admins may do anything.
"""

from __future__ import annotations

import copy
import threading
import time
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import Group, Link

READ, WRITE, MANAGE = 1, 2, 3
LEVELS = {"can_read": READ, "can_write": WRITE, "can_manage": MANAGE}


class Permissions:
    def __init__(self, session: Session, user_uuid: str, is_admin: bool):
        self.session, self.user_uuid, self.is_admin = session, user_uuid, is_admin

    @cached_property
    def _principals(self) -> set[str]:
        """The user and the role groups they are a member of (a permission link user -> role)."""
        roles = self.session.scalars(
            select(Link.head_uuid).join(Group, Group.uuid == Link.head_uuid).where(
                Link.link_class == "permission", Link.tail_uuid == self.user_uuid, Group.group_class == "role"
            )
        )
        return {self.user_uuid, *roles}

    @cached_property
    def _grants(self) -> dict[str, int]:
        """head uuid -> the best level some permission link gives this user on it."""
        grants: dict[str, int] = {role: READ for role in self._principals if role != self.user_uuid}
        rows = self.session.execute(
            select(Link.head_uuid, Link.name).where(
                Link.link_class == "permission", Link.tail_uuid.in_(self._principals)
            )
        )
        for head, name in rows:
            level = LEVELS.get(name or "", 0)
            if level > grants.get(head, 0):
                grants[head] = level
        return grants

    @cached_property
    def _project_levels(self) -> dict[str, int]:
        """Every project (and role) this user has a level on, directly or through an ancestor."""
        parents = dict(self.session.execute(select(Group.uuid, Group.owner_uuid)).all())
        levels: dict[str, int] = {}

        def level_of(uuid: str, depth: int = 0) -> int:
            if uuid in levels:
                return levels[uuid]
            level = self._grants.get(uuid, 0)
            owner = parents.get(uuid)
            if owner == self.user_uuid:
                level = MANAGE
            elif owner is not None and owner in parents and depth < 64:
                level = max(level, level_of(owner, depth + 1))
            levels[uuid] = level
            return level

        for uuid in parents:
            level_of(uuid)
        return {uuid: level for uuid, level in levels.items() if level}

    def preload(self) -> None:
        """Compute everything now, so the snapshot can outlive its session."""
        _ = self._principals, self._grants, self._project_levels

    def rebind(self, session: Session) -> Permissions:
        """This snapshot for another operation's session: a copy (the cached one is shared by
        every thread; rebinding it in place let one request query through another's session)."""
        twin = copy.copy(self)  # the computed sets are shared, read-only
        twin.session = session
        return twin

    def level(self, uuid: str, owner_uuid: str | None) -> int:
        """This user's level on one object, given its owner."""
        if self.is_admin:
            return MANAGE
        if uuid == self.user_uuid or owner_uuid == self.user_uuid:
            return MANAGE
        level = max(self._grants.get(uuid, 0), self._project_levels.get(uuid, 0))
        if owner_uuid is not None:
            level = max(level, self._project_levels.get(owner_uuid, 0))
        return level

    def readable_owners(self) -> set[str]:
        """Owners whose objects this user can read: themselves and every readable project."""
        return {self.user_uuid, *self._project_levels}

    def shared_objects(self) -> set[str]:
        """Objects shared with this user directly by a permission link."""
        return set(self._grants)

    def can(self, level: int, uuid: str, owner_uuid: str | None) -> bool:
        return self.level(uuid, owner_uuid) >= level

    def principals(self) -> set[str]:
        """The user and the role groups they are a member of: whose grants are theirs."""
        return set(self._principals)

    def managed_owners(self) -> set[str]:
        """Owners everything of which this user manages: themselves and the projects they manage."""
        return {self.user_uuid, *(uuid for uuid, level in self._project_levels.items() if level >= MANAGE)}

    def managed_objects(self) -> set[str]:
        """Objects this user manages by a grant on the object itself, and the managed owners."""
        return {*(uuid for uuid, level in self._grants.items() if level >= MANAGE), *self.managed_owners()}


class PermissionCache:
    """Per-user permission snapshots, reused until anything that grants access changes.

    Writes to groups or links (or users, for admin flags) through this process bump the epoch;
    `max_age` bounds staleness from writers in other processes sharing the database.
    """

    def __init__(self, max_age: float = 2.0):
        self.max_age = max_age
        self.epoch = 0
        self._entries: dict[str, tuple[int, float, Permissions]] = {}
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self.epoch += 1
            self._entries.clear()

    def get(self, session: Session, user_uuid: str, is_admin: bool) -> Permissions:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(user_uuid)
            if entry is not None and entry[0] == self.epoch and now - entry[1] < self.max_age:
                return entry[2].rebind(session)
            epoch = self.epoch
        perms = Permissions(session, user_uuid, is_admin)
        perms.preload()
        with self._lock:
            if epoch == self.epoch:
                self._entries[user_uuid] = (epoch, now, perms)
        return perms
