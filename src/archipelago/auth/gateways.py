"""Gateways have owners: who may register data through a gateway (have it read its store and sign
the manifest) and store blocks moved to it.

A gateway is an object of the permission model: its keep_services UUID (`<cluster>-bi6l4-…`), owned
by the system user. Admins may register through every gateway; anyone else needs a permission
link granting `can_write` on the gateway, to them or to a role group they belong to, which only
admins (or a holder of `can_manage` on the gateway) can make:

    {"link_class": "permission", "name": "can_write", "tail_uuid": <user or role group>,
     "head_uuid": <gateway uuid>}

Reading blocks a gateway serves needs no grant: it takes a signed locator, as keepstore does.
"""

from __future__ import annotations

from ..errors import Forbidden
from .permissions import WRITE, Permissions

GRANT = "can_write"


def may_register(perms: Permissions, gateway_uuid: str, system_user_uuid: str) -> bool:
    """May this caller register through (and move blocks to) the gateway `gateway_uuid`?"""
    return perms.can(WRITE, gateway_uuid, system_user_uuid)


def refusal(gateway_uuid: str, user_uuid: str) -> Forbidden:
    return Forbidden(
        f"{user_uuid} may not register data through gateway {gateway_uuid} (nor move blocks to it): ask an "
        f"admin for {GRANT} on it — a permission link {{\"link_class\": \"permission\", \"name\": \"{GRANT}\", "
        f"\"tail_uuid\": \"<you or a role group of yours>\", \"head_uuid\": \"{gateway_uuid}\"}}")
