"""Workflows: a CWL document (packed), which names its inputs by `keep:` PDH or collection UUID."""

from __future__ import annotations

from ..db.models import Workflow
from .base import Resource


class Workflows(Resource):
    name = "workflows"
    model = Workflow
    writable = frozenset({"name", "description", "definition", "owner_uuid"})
    can_own = True
