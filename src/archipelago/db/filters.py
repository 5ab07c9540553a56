"""Arvados list filters and order clauses -> SQLAlchemy, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, Select, String, Text, cast, not_, or_, select

from ..db.models import PropertyIndex
from ..errors import BadRequest, Unprocessable
from ..ids import INFIX

_KIND_INFIX = {
    "arvados#collection": INFIX["Collection"],
    "arvados#user": INFIX["User"],
    "arvados#group": INFIX["Group"],
    "arvados#link": INFIX["Link"],
    "arvados#apiClientAuthorization": INFIX["ApiClientAuthorization"],
    "arvados#containerRequest": INFIX["ContainerRequest"],
    "arvados#container": INFIX["Container"],
    "arvados#workflow": INFIX["Workflow"],
}
SCALARS = (str, int, float, bool, type(None))  # what a column can be compared with
OPERATORS = {"=", "!=", "<", "<=", ">", ">=", "like", "ilike", "not like", "not ilike", "in", "not in", "is_a",
             "exists", "contains"}


def _scalar(value: Any) -> bool:
    """A value a column can be compared with (integers within the databases' 64 bits)."""
    return isinstance(value, SCALARS) and not (isinstance(value, int) and abs(value) >= 1 << 63)


def _refuse_unfilterable(attr: str, unfilterable: frozenset[str], use: str) -> None:
    """A write-only or secret column is never compared or sorted, whatever the operator: hiding it
    from the output is not enough when `like '%"content":"A%'` or an order answers which rows match a
    guess, one character at a time. Refused with the same answer whatever the row holds."""
    if attr.split(".", 1)[0] in unfilterable:
        raise Unprocessable(f"Invalid attribute {attr!r} for {use}: it is never filtered or ordered by")


def _column(model: Any, attr: str) -> Any:
    if attr.startswith("properties."):
        if not hasattr(model, "properties"):
            raise BadRequest(f"{model.__tablename__} have no properties")
        return model.properties[attr.split(".", 1)[1]]
    column = getattr(model, attr, None)
    if column is None or attr not in model.__table__.columns:
        raise BadRequest(f"cannot filter {model.__tablename__} on unknown attribute {attr!r}")
    return column


def _indexed_property(model: Any, key: str, op: str, operand: Any) -> Any | None:
    """`properties.<key>` filters the PropertyIndex table can answer with an index, else None."""
    if not model.indexed_properties or op not in ("=", "in", "like", "exists"):
        return None
    if op == "exists":
        present = model.uuid.in_(select(PropertyIndex.object_uuid).where(PropertyIndex.key == key))
        return present if operand in (True, "true", None) else not_(present)
    if op == "in":
        if not isinstance(operand, list):
            raise BadRequest("operand of 'in' must be a list")
        values = [v if isinstance(v, str) else json.dumps(v) for v in operand]
        condition: ColumnElement[bool] = PropertyIndex.value.in_(values)
    else:
        value = operand if isinstance(operand, str) else json.dumps(operand)
        condition = PropertyIndex.value == value if op == "=" else PropertyIndex.value.like(value)
    return model.uuid.in_(select(PropertyIndex.object_uuid).where(PropertyIndex.key == key, condition))


def _condition(model: Any, attr: str, op: str, operand: Any) -> Any:
    if op not in OPERATORS:
        raise BadRequest(f"unknown filter operator {op!r}")
    if attr == "properties" and op == "exists" and isinstance(operand, str):
        attr, operand = f"properties.{operand}", True  # Arvados' older form: ["properties", "exists", "key"]
    if attr.startswith("properties.") and (
        indexed := _indexed_property(model, attr.split(".", 1)[1], op, operand)
    ) is not None:
        return indexed
    if op == "is_a":
        kinds = operand if isinstance(operand, list) else [operand]
        infixes = [_KIND_INFIX.get(k) if isinstance(k, str) else None for k in kinds]
        if None in infixes:
            raise BadRequest(f"unknown kind in is_a filter: {operand!r}")
        column = _column(model, attr)
        return or_(*[column.like(f"_____-{infix}-%") for infix in infixes])
    if op == "exists":
        if not attr.startswith("properties."):
            raise BadRequest("'exists' applies to properties.<key>")
        present = _column(model, attr).as_string().is_not(None)
        return present if operand in (True, "true", None) else not_(present)
    column = _column(model, attr)
    if attr.startswith("properties."):
        column = column.as_string()
        if op not in ("in", "not in"):
            operand = str(operand)
    if op == "contains":  # an array attribute (or a property whose value is an array) holding operand
        if not isinstance(operand, str | int | float | bool):
            raise BadRequest(f"operand of 'contains' must be a string or number, got {operand!r}")
        as_text = column if attr.startswith("properties.") else cast(column, Text)
        return as_text.like(f"%{json.dumps(operand)}%")
    if op in ("in", "not in"):
        if not isinstance(operand, list) or not all(_scalar(v) for v in operand):
            raise BadRequest(f"operand of {op!r} must be a list of strings or numbers, got {operand!r}")
        condition = column.in_(operand)
        return condition if op == "in" else not_(condition)
    if not _scalar(operand):
        raise BadRequest(f"operand of {op!r} on {attr!r} must be a string, number, boolean or null, got {operand!r}")
    if op in ("like", "not like", "ilike", "not ilike") and not isinstance(operand, str):
        raise BadRequest(f"operand of {op!r} must be a string pattern, got {operand!r}")
    if op in ("like", "not like"):
        return column.like(operand) if op == "like" else not_(column.like(operand))
    if op in ("ilike", "not ilike"):
        return column.ilike(operand) if op == "ilike" else not_(column.ilike(operand))
    if op in ("<", "<=", ">", ">=") and (operand is None or isinstance(operand, bool)):
        raise BadRequest(f"operand of {op!r} must be a string or number, got {json.dumps(operand)}")
    if operand is None:
        return column.is_(None) if op == "=" else column.is_not(None)
    return {"=": column.__eq__, "!=": column.__ne__, "<": column.__lt__, "<=": column.__le__,
            ">": column.__gt__, ">=": column.__ge__}[op](operand)


def apply_filters(query: Select[Any], model: Any, filters: list[list[Any]],
                  unfilterable: frozenset[str] = frozenset()) -> Select[Any]:
    """`unfilterable`: the resource's columns no filter may name (a 422, checked before anything else)."""
    for item in filters:
        if not isinstance(item, list) or len(item) != 3 or not isinstance(item[0], str | list):
            raise BadRequest(f"a filter is [attribute, operator, operand], got {item!r}")
        attr, op, operand = item
        op = str(op).lower()
        if attr == "any" or isinstance(attr, list):  # several attributes: any one may match
            names = _searchable(model, unfilterable) if attr == "any" else attr
            if op not in ("like", "ilike", "=", "in") or not names or not all(isinstance(n, str) for n in names):
                raise BadRequest(f"a filter on several attributes takes like, ilike, = or in, got {item!r}")
            for name in names:
                _refuse_unfilterable(name, unfilterable, "filter")
            query = query.where(or_(*[_condition(model, name, op, operand) for name in names]))
            continue
        _refuse_unfilterable(attr, unfilterable, "filter")
        query = query.where(_condition(model, attr, op, operand))
    return query


def _searchable(model: Any, unfilterable: frozenset[str]) -> list[str]:
    """What `["any", "ilike", ...]` searches, as in Arvados: the text columns (not manifests, nor
    what no filter may name)."""
    return [c.key for c in model.__table__.columns if isinstance(c.type, String | Text)
            and c.key not in ("manifest_text", "api_token", "runtime_token") and c.key not in unfilterable]


def apply_order(query: Select[Any], model: Any, order: list[str],
                unfilterable: frozenset[str] = frozenset()) -> Select[Any]:
    """`unfilterable`: the resource's columns no order may name (sorting by one is an oracle too)."""
    clauses = []
    direction = "desc"
    for item in order or ["modified_at desc"]:
        attr, _, direction = item.strip().partition(" ")
        _refuse_unfilterable(attr, unfilterable, "order")  # `secret_mounts.key` before it reads as table.column
        attr = attr.split(".")[-1] if attr.count(".") == 1 and not attr.startswith("properties") else attr
        _refuse_unfilterable(attr, unfilterable, "order")
        column = _column(model, attr)
        direction = direction.strip().lower() or "asc"
        if direction not in ("asc", "desc"):
            raise BadRequest(f"order direction must be asc or desc, got {direction!r}")
        clauses.append(column.desc() if direction == "desc" else column.asc())
    # a stable order for paging, in the direction of the last key so that one index scan (ending
    # in uuid) serves the whole ORDER BY and the LIMIT stops it early
    clauses.append(model.uuid.desc() if direction == "desc" else model.uuid.asc())
    return query.order_by(*clauses)
