"""What one user may read, as the container lifecycle judges it: the collections a request mounts
and the image it runs, when it is committed or joins a container; the output a container claims.

A request is judged with the permissions of whoever commits it, and its container then runs as
that user (its token reads only what they may read). Data this cluster does not hold is judged
where it is held: the executor reads it through the federation with the requester's identity.
"""

from __future__ import annotations

from enum import Enum

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..auth.permissions import READ, Permissions
from ..db.models import Collection, User
from .validation import EMPTY_PDH


class Verdict(Enum):
    READABLE = "readable"  # a collection here the user can read has it
    HIDDEN = "hidden"  # not readable here, and nowhere else to look (refused, as if it did not exist)
    ELSEWHERE = "elsewhere"  # no collection here has it; a peer may, judged when the container runs


class Access:
    def __init__(self, session: Session, perms: Permissions, cluster_id: str, peers: frozenset[str]):
        self.session, self.perms, self.cluster_id, self.peers = session, perms, cluster_id, peers
        self._verdicts: dict[str, Verdict] = {}

    @property
    def user_uuid(self) -> str:
        return self.perms.user_uuid

    def for_user(self, user_uuid: str) -> Access:
        """The same judgement for another user (a container's runtime user)."""
        if user_uuid == self.user_uuid:
            return self
        return Access(self.session, Permissions(self.session, user_uuid, self.is_admin(user_uuid)), self.cluster_id,
                      self.peers)

    def is_admin(self, user_uuid: str) -> bool:
        return bool(self.session.scalar(select(User.is_admin).where(User.uuid == user_uuid)))

    def collection_pdh(self, uuid: str) -> str | None:
        """The content of a collection of this cluster the user can read, by UUID; None whether it
        does not exist or is not readable (a stranger learns nothing of what others hold)."""
        row = self.session.execute(select(Collection.portable_data_hash, Collection.owner_uuid).where(
            Collection.uuid == uuid, Collection.is_trashed.is_(False))).first()
        if row is None or not self.perms.can(READ, uuid, row.owner_uuid):
            return None
        return str(row.portable_data_hash)

    def can_read_pdh(self, pdh: str, include_trash: bool = True) -> bool:
        """Does some collection here with this content let the user read it? (A container's own
        output and log are saved trashed, as crunch-run saves them: they count.)"""
        if pdh == EMPTY_PDH:
            return True  # nothing to read
        query = select(Collection.uuid, Collection.owner_uuid).where(Collection.portable_data_hash == pdh)
        if not include_trash:
            query = query.where(Collection.is_trashed.is_(False))
        return any(self.perms.can(READ, uuid, owner) for uuid, owner in self.session.execute(query))

    def pdh(self, pdh: str) -> Verdict:
        """May the user's container read this content? Readable here; or held here only by others
        (refused: that it exists is not told); or not held here at all, which a cluster with peers
        leaves to the federation (as Arvados does for images) and a cluster alone refuses."""
        if pdh not in self._verdicts:
            self._verdicts[pdh] = self._judge(pdh)
        return self._verdicts[pdh]

    def _judge(self, pdh: str) -> Verdict:
        if self.can_read_pdh(pdh, include_trash=False):
            return Verdict.READABLE
        held = self.session.scalar(select(Collection.uuid).where(Collection.portable_data_hash == pdh).limit(1))
        return Verdict.ELSEWHERE if held is None and self.peers else Verdict.HIDDEN
