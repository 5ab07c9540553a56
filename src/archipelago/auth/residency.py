"""Data residency: collections and projects whose contents stay on their cluster.

A collection is restricted if it carries a policy or sits (at any depth) in a project that
does. Readers outside the cluster — another cluster's API or keepstore acting for anyone, or a
user whose identity comes from another cluster — get a 403 naming the policy, and the refusal is
logged. Derived collections (new data computed here) carry no policy unless their owner sets one.
"""

from __future__ import annotations

import logging

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..db.models import Collection, Group
from ..errors import Forbidden, Unprocessable
from ..formats.manifest import parse
from ..refusals import record_refusal

log = logging.getLogger("archipelago.residency")
POLICIES = {"cluster": "stays on its cluster"}


class ResidencyRefused(Forbidden):
    pass


def restricted_projects(session: Session) -> set[str]:
    """Projects with a policy, and every project below them."""
    parents = dict(session.execute(select(Group.uuid, Group.owner_uuid)).all())
    marked = set(session.scalars(select(Group.uuid).where(Group.residency.is_not(None))))
    restricted = set()
    for uuid in parents:
        node: str | None = uuid
        depth = 0
        while node is not None and depth < 64:
            if node in marked:
                restricted.add(uuid)
                break
            node, depth = parents.get(node), depth + 1
    return restricted


def restricted_blocks(session: Session) -> set[str]:
    """md5 of every block referenced by a restricted collection (what keepstore must guard)."""
    projects = restricted_projects(session)
    query = select(Collection.manifest_text).where(
        or_(Collection.residency.is_not(None), Collection.owner_uuid.in_(projects)))
    blocks: set[str] = set()
    for text in session.scalars(query):
        for stream in parse(text).streams:
            blocks.update(locator[:32] for locator in stream.locators)
    return blocks


def refuse(cluster_id: str, what: str, reader: str) -> ResidencyRefused:
    log.warning("residency: refused %s to %s (policy 'cluster': %s)", what, reader, POLICIES["cluster"])
    record_refusal(what, reader)
    return ResidencyRefused(f"{what} stays on cluster {cluster_id} (residency policy 'cluster'): "
                            f"it cannot be read from outside that cluster")


def check_policy(attrs: dict[str, object]) -> None:
    if attrs.get("residency") not in (None, *POLICIES):
        raise Unprocessable(f"residency must be one of {sorted(POLICIES)} or null")
