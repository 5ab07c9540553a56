"""What the data pages show, gathered through the Backend with the reader's Caller (no HTTP here):
a user's projects and collections on every cluster, a project's contents, a collection with its
residency, search by name, property or identifier, and sharing."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

from ..backend.contents import group_contents, shared_with
from ..backend.interface import Caller, ListParams, Record
from ..errors import ArchipelagoError, NotFound, Unprocessable
from ..ids import INFIX, PDH_RE, UUID_RE
from .federation import Federation

LISTED = ["uuid", "name", "kind", "owner_uuid", "modified_at", "portable_data_hash", "file_count", "file_size_total",
          "group_class", "properties", "description", "residency", "state"]
PAGE = 200
LEVELS = ("can_read", "can_write", "can_manage")
PROPERTY_QUERY = re.compile(r"([^=:\s]+)\s*[=:]\s*(.+)")
RUN_ID = re.compile(r"[a-z0-9]{5}-run-[0-9a-f]{16}")
PAGES_BY_INFIX = {INFIX["Collection"]: "/collections/", INFIX["Group"]: "/projects/"}


@dataclass
class ClusterItems:
    """One cluster's answer: its items, or why it gave none."""

    cluster: str
    items: list[Record] = field(default_factory=list)
    error: str | None = None


def _answers(results: dict[str, Any]) -> list[ClusterItems]:
    out = []
    for cluster, result in results.items():
        if isinstance(result, ArchipelagoError):
            out.append(ClusterItems(cluster, error=str(result)))
        else:
            out.append(ClusterItems(cluster, list(result["items"])))
    return out


class Data:
    def __init__(self, federation: Federation):
        self.fed = federation

    def home(self, caller: Caller) -> dict[str, list[ClusterItems]]:
        """What the user holds on each cluster, and what others share with them there."""
        params = ListParams(order=["name asc"], limit=PAGE, select=LISTED, count="none")
        mine = self.fed.each(lambda c: group_contents(self.fed.backend_for(c), caller, caller.user_uuid,  # type: ignore[arg-type]
                                                      params))
        shared = self.fed.each(lambda c: shared_with(self.fed.backend_for(c), caller, None,  # type: ignore[arg-type]
                                                     ListParams(limit=PAGE)))
        return {"mine": _answers(mine), "shared": _answers(shared)}

    def project(self, caller: Caller, uuid: str) -> tuple[Record, list[Record]]:
        project = self.fed.backend.get(caller, "groups", uuid)
        if project.get("group_class") not in ("project", "filter"):
            raise NotFound(f"{uuid} is a group, not a project")
        contents = group_contents(self.fed.backend_for(uuid[:5]), caller, uuid,  # type: ignore[arg-type]
                                  ListParams(order=["name asc"], limit=PAGE, select=LISTED, count="none"))
        return project, list(contents["items"])

    def owners(self, caller: Caller, owner: str) -> list[Record]:
        """The projects above an object, nearest first (as far as the reader may see them)."""
        chain: list[Record] = []
        while UUID_RE.fullmatch(owner) and owner[6:11] == INFIX["Group"] and len(chain) < 16:
            try:
                group = self.fed.backend.get(caller, "groups", owner, ["uuid", "name", "owner_uuid", "residency"])
            except ArchipelagoError:
                break
            chain.append(group)
            owner = str(group.get("owner_uuid") or "")
        return chain

    @staticmethod
    def residency(record: Record, chain: list[Record]) -> dict[str, Any] | None:
        """The policy the object is under: its own, or the nearest project's that has one."""
        if record.get("residency"):
            return {"policy": record["residency"], "set_on": None}
        for project in chain:
            if project.get("residency"):
                return {"policy": project["residency"], "set_on": project}
        return None

    def gateways(self, caller: Caller) -> dict[str, str]:
        services = self.fed.backend.keep_services(caller)["items"]
        return {s["uuid"]: s.get("service_type", "") for s in services
                if str(s.get("service_type", "")).startswith("gateway:")}

    def shares(self, caller: Caller, uuid: str) -> list[Record] | None:
        """Who may use the object (permission links on it), or None if the reader may not see them."""
        try:
            links = self.fed.backend_for(uuid[:5]).list(caller, "links", ListParams(
                filters=[["head_uuid", "=", uuid], ["link_class", "=", "permission"]], limit=PAGE, count="none"))
        except ArchipelagoError:
            return None
        return list(links["items"])

    def manages(self, caller: Caller, record: Record, shares: list[Record] | None) -> bool:
        """Whether the caller may manage the object, and so share it: its owner or an admin, a manager of
        it or of its project (a group's record tells can_manage), or holding a can_manage grant among
        the object's `shares` as she sees them."""
        uuid, owner = record["uuid"], record.get("owner_uuid") or ""
        if caller.is_admin or caller.user_uuid in (uuid, owner) or record.get("can_manage"):
            return True
        if owner[6:11] == INFIX["Group"]:
            with contextlib.suppress(ArchipelagoError):
                if self.fed.backend.get(caller, "groups", owner).get("can_manage"):  # routed by its prefix
                    return True
        return any(link["tail_uuid"] == caller.user_uuid and link["name"] == "can_manage" for link in shares or [])

    def people(self, caller: Caller) -> list[Record]:
        """Users and groups a share may name (for the form's suggestions)."""
        backend = self.fed.backend.this_cluster()
        users = backend.list(caller, "users", ListParams(limit=500, count="none", order=["username asc"],
                                                         select=["uuid", "username", "email", "full_name"]))
        groups = backend.list(caller, "groups", ListParams(filters=[["group_class", "=", "role"]], limit=500,
                                                           count="none", select=["uuid", "name"]))
        return [*users["items"], *groups["items"]]

    def principal(self, caller: Caller, who: str) -> str:
        """A user or group named by UUID, username, email or (role group) name."""
        who = who.strip()
        if UUID_RE.fullmatch(who):
            return who
        backend = self.fed.backend.this_cluster()
        for resource, filters in (("users", [["username", "=", who]]), ("users", [["email", "=", who]]),
                                  ("groups", [["name", "=", who], ["group_class", "=", "role"]])):
            found = backend.list(caller, resource, ListParams(filters=filters, limit=2, count="none"))["items"]
            if len(found) == 1:
                return str(found[0]["uuid"])
        raise Unprocessable(f"no user or group named {who!r} on cluster {self.fed.home}: give a username, an email "
                            "or a UUID")

    def share(self, caller: Caller, uuid: str, who: str, level: str) -> Record:
        if level not in LEVELS:
            raise Unprocessable(f"the permission is one of {', '.join(LEVELS)}, not {level!r}")
        if not UUID_RE.fullmatch(uuid):
            raise Unprocessable(f"{uuid!r} is not a UUID: only projects and collections with a UUID are shared")
        tail = self.principal(caller, who)
        return self.fed.backend.create(caller, "links", {"link_class": "permission", "name": level,
                                                         "tail_uuid": tail, "head_uuid": uuid},
                                       cluster_id=uuid[:5])

    def search(self, caller: Caller, query: str) -> list[ClusterItems]:
        """Projects and collections on every cluster whose name holds `query`, or whose property
        `key` is `value` for a `key=value` (or `key:value`) query."""
        if match := PROPERTY_QUERY.fullmatch(query):
            filters = [[f"properties.{match[1]}", "=", match[2].strip()]]
        else:
            filters = [["name", "ilike", f"%{query}%"]]

        def on(cluster: str) -> Record:
            backend = self.fed.backend_for(cluster)
            items: list[Record] = []
            for resource, extra in (("groups", [["group_class", "=", "project"]]), ("collections", [])):
                page = backend.list(caller, resource, ListParams(filters=[*filters, *extra], limit=50, count="none",
                                                                 order=["modified_at desc"],
                                                                 select=[f for f in LISTED if f != "state"]))
                items += page["items"]
            return {"items": items}

        return _answers(self.fed.each(on))


def identifier_page(query: str) -> str | None:
    """The page an identifier names, if the search box was given one."""
    if PDH_RE.fullmatch(query):
        return f"/collections/{query}"
    if RUN_ID.fullmatch(query):
        return f"/runs/{query}"
    if UUID_RE.fullmatch(query):
        if (prefix := PAGES_BY_INFIX.get(query[6:11])) is not None:
            return prefix + query
        if query[6:11] == INFIX["ContainerRequest"]:
            return f"/requests/{query}"
    return None
