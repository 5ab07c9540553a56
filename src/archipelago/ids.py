"""Identifiers shared with Arvados: cluster IDs, object UUIDs and their type infixes, PDHs."""

from __future__ import annotations

import hashlib
import re
import secrets

CLUSTER_ID_RE = re.compile(r"[a-z0-9]{5}")
UUID_RE = re.compile(r"[a-z0-9]{5}-[a-z0-9]{5}-[a-z0-9]{15}")
PDH_RE = re.compile(r"[0-9a-f]{32}\+[0-9]+")

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int) -> str:
    digits = []
    while number:
        number, digit = divmod(number, 36)
        digits.append(_BASE36[digit])
    return "".join(reversed(digits)) or "0"


def type_infix(class_name: str) -> str:
    """The 5-char infix Arvados derives from a model class name (last 5 base36 digits of its md5)."""
    return _base36(int(hashlib.md5(class_name.encode()).hexdigest(), 16))[-5:]


# The infixes used on the wire, spelled out so a reader can grep for them.
INFIX = {
    "Collection": "4zz18",
    "User": "tpzed",
    "Group": "j7d0g",
    "Link": "o0j2j",
    "ApiClientAuthorization": "gj3su",
    "ContainerRequest": "xvhdp",
    "Container": "dz642",
    "Workflow": "7fd4e",
    "KeepService": "bi6l4",
    "Volume": "nyw5e",
    "Identifier": "df4ad",  # ours (type_infix("Identifier")); Arvados has no such objects
}


def new_uuid(cluster_id: str, infix: str) -> str:
    """A fresh random UUID `<cluster>-<infix>-<15 base36 chars>`."""
    return f"{cluster_id}-{infix}-{_base36(secrets.randbits(256))[-15:].rjust(15, '0')}"
