"""Workflows: a CWL document (packed), which names its inputs by `keep:` PDH or collection UUID."""

from __future__ import annotations

from typing import Any, ClassVar

from ..db.models import Workflow
from .base import Resource


class Workflows(Resource):
    name = "workflows"
    class_name = "Workflow"
    project_contents: ClassVar[list[list[Any]] | None] = []
    model = Workflow
    writable = frozenset({"name", "description", "definition", "owner_uuid"})
    can_own = True
