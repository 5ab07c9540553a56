"""LocalBackend: the Backend interface on this cluster's own database. A generic engine: get, list,
create, update, delete, trash and untrash work the same for every resource; what differs lives
with each resource (resources/), and who is calling with the identity module (auth/identity.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from ..auth.gateways import may_register, refusal
from ..auth.identity import Identity
from ..auth.permissions import MANAGE, READ, WRITE, PermissionCache, Permissions
from ..auth.remote import RemoteTokenValidator
from ..auth.residency import restricted_blocks
from ..config import ClusterConfig
from ..db.changes import ChangeSignal, signal_path
from ..db.filters import apply_filters, apply_order
from ..db.models import PropertyIndex, property_rows
from ..db.unit import Database
from ..errors import BadRequest, Forbidden, NotFound, Unauthorized, Unprocessable
from ..ids import UUID_RE, new_uuid
from ..resources.base import SERVER_FIELDS, Context, Resource
from ..resources.collection_files import FilesQuery
from ..resources.collections import Collections
from ..resources.registry import Registry
from ..times import now, parse_time, timestamp
from .interface import Caller, Changes, ListParams, Record
from .list_cache import ListCache


class LocalBackend:
    def __init__(self, config: ClusterConfig, sessions: sessionmaker[Session],
                 validator: RemoteTokenValidator | None = None):
        self.config = config
        self.sessions = sessions
        # other API processes on this database drop their caches as soon as this one commits
        signal = signal_path(config.database_url, config.cluster_id)
        self.db = Database(sessions, ChangeSignal(signal), ChangeSignal(signal.with_name(signal.name + ".writes")))
        self.list_cache = ListCache()
        self.permission_cache = PermissionCache()
        self.db.on_cache_inputs_changed(self.permission_cache.invalidate)
        if validator is None and config.remote_clusters:
            validator = RemoteTokenValidator(config)
        self.identity = Identity(config, self.db, validator)
        self.registry = Registry(config)

    # ------------------------------------------------------------ plumbing
    def bootstrap(self) -> None:
        self.identity.bootstrap()

    def create_token(self, user_uuid: str, scopes: list[str] | None = None, expires_at: Any = None) -> str:
        return self.identity.create_token(user_uuid, scopes, expires_at)

    def restricted_blocks(self) -> set[str]:
        with self.db.session() as session:
            return restricted_blocks(session)

    @contextmanager
    def _operation(self, caller: Caller, resource: Resource, read_only: bool = False) -> Iterator[Context]:
        """One unit of work for one caller on one resource, with their permissions."""
        with self.db.session(read_only) as session:
            yield Context(self.config, session, caller, self._permissions(session, caller), self.registry.owner_of,
                          lambda row, select_: self._render(resource, row, caller, select_), self.registry.exists)

    def _permissions(self, session: Session, caller: Caller) -> Permissions:
        self.db.catch_up()
        return self.permission_cache.get(session, caller.user_uuid, caller.is_admin)

    def _render(self, resource: Resource, row: Any, caller: Caller | None = None,
                select_: list[str] | None = None, listing: bool = False) -> Record:
        """An API record. Lists render pages of up to 1000 rows: this is on the hot path."""
        values = row._asdict() if hasattr(row, "_asdict") else {key: getattr(row, key) for key in resource.columns}
        for key in resource.timestamp_columns:
            values[key] = timestamp(values[key])
        out: Record = {"kind": resource.kind, **values}
        out["etag"] = hashlib.md5(f"{row.uuid}{out['modified_at']}".encode()).hexdigest()[:25]
        wanted = set(select_) if select_ else None
        resource.render_extra(out, row, caller, wanted, listing)
        if wanted is not None:
            if unknown := wanted - out.keys():
                raise BadRequest(f"cannot select unknown attribute(s) of {resource.name}: {', '.join(sorted(unknown))}")
            return {k: v for k, v in out.items() if k in wanted or k == "kind"}
        if listing:
            for hidden in resource.hidden_in_lists:
                out.pop(hidden, None)
        return out

    @staticmethod
    def _render_page(resource: Resource, keys: tuple[str, ...], rows: Sequence[Any], caller: Caller) -> list[Record]:
        """`_render(..., listing=True)` of a whole page without `select`, with the per-row work
        hoisted out of the loop (a page of 100 rows is most of a list request's time)."""
        kind, extra, hidden = resource.kind, resource.render_extra, resource.hidden_in_lists
        stamps = [key for key in resource.timestamp_columns if key in keys]
        md5 = hashlib.md5
        items = []
        for row in rows:
            out: Record = {"kind": kind, **dict(zip(keys, row, strict=True))}
            for key in stamps:
                out[key] = timestamp(out[key])
            out["etag"] = md5(f"{row.uuid}{out['modified_at']}".encode()).hexdigest()[:25]
            extra(out, row, caller, None, True)
            for key in hidden:
                out.pop(key, None)
            items.append(out)
        return items

    def _find(self, ctx: Context, resource: Resource, uuid: str, level: int = READ) -> Any:
        row = ctx.session.get(resource.model, uuid)
        if row is None or not resource.visible(ctx.perms, row):
            raise NotFound(f"{resource.name[:-1].replace('_', ' ')} {uuid} not found")
        if level > READ and not resource.allowed(ctx, row, level):
            raise Forbidden(f"you may read {uuid} but not change it")
        return row

    def _writable(self, caller: Caller, resource: Resource, attrs: Record) -> Record:
        unknown = set(attrs) - resource.writable - SERVER_FIELDS - resource.echoed
        if unknown:
            raise Unprocessable(f"unknown or read-only attribute(s) for {resource.name}: "
                                f"{', '.join(sorted(unknown))}")
        if not caller.is_admin and (forbidden := set(attrs) & resource.admin_only):
            raise Forbidden(f"only admins may set {', '.join(sorted(forbidden))}")
        writable = {k: v for k, v in attrs.items() if k in resource.writable}
        for key in resource.timestamp_columns:
            if writable.get(key) is not None:
                writable[key] = parse_time(writable[key])
        resource.check_types(writable)
        owner = writable.get("owner_uuid")
        if owner is not None and not UUID_RE.fullmatch(owner):
            raise Unprocessable(f"owner_uuid {owner!r} is not a UUID")
        return writable

    @staticmethod
    def _unique_name(session: Session, model: Any, owner: str, name: str, ensure: bool,
                     exclude: str | None = None) -> str:
        def taken(candidate: str) -> bool:
            query = select(model.uuid).where(model.owner_uuid == owner, model.name == candidate,
                                             model.is_trashed.is_(False))
            if exclude:
                query = query.where(model.uuid != exclude)
            return session.scalar(query.limit(1)) is not None

        if not taken(name):
            return name
        if not ensure:
            raise Unprocessable(f"name {name!r} is already in use in {owner} (ensure_unique_name=true, or "
                                "--ensure-unique-name in the CLI, picks 'name (2)')")
        for n in range(2, 10_000):
            candidate = f"{name} ({n})"
            if not taken(candidate):
                return candidate
        raise Unprocessable(f"no unique name found for {name!r}")

    @staticmethod
    def _index_properties(session: Session, row: Any) -> None:
        if getattr(row, "indexed_properties", False):
            session.execute(delete(PropertyIndex).where(PropertyIndex.object_uuid == row.uuid))
            if rows := property_rows(row.uuid, row.properties):
                session.execute(insert(PropertyIndex), rows)

    # ------------------------------------------------------------ identity
    def this_cluster(self) -> LocalBackend:
        return self

    def known_caller(self, token: str, remote: str | None = None) -> Caller | None:
        return self.identity.known_caller(token, remote)

    def authenticate(self, token: str, remote: str | None = None) -> Caller:
        return self.identity.authenticate(token, remote)

    def delegate(self, caller: Caller, scopes: list[str], seconds: float) -> str:
        if caller.user_uuid[:5] != self.config.cluster_id:
            raise Unprocessable(f"only {caller.user_uuid[:5]}, the home of {caller.user_uuid}, can issue tokens "
                                "for work on their behalf")
        if "all" not in caller.scopes:  # else a narrow token would mint itself a wider one for use elsewhere
            raise Forbidden("a token for work on other clusters is only issued to a token with scope 'all' "
                            f"(this one's scopes: {', '.join(caller.scopes)})")
        # bound to the caller's token: made with a container's, it must not outlive the container
        return self.identity.create_token(caller.user_uuid, scopes, now() + timedelta(seconds=seconds), made_by=caller)

    def user_current(self, caller: Caller) -> Record:
        return self._current(caller, self.registry["users"])

    def token_current(self, caller: Caller) -> Record:
        return self._current(caller, self.registry["api_client_authorizations"])

    def _current(self, caller: Caller, resource: Resource) -> Record:
        """The caller's own user or token, as its resource renders it (no permissions needed)."""
        with self.db.session() as session:
            return resource.current(session, caller, lambda row: self._render(resource, row))

    # ------------------------------------------------------------ generic operations
    def get(self, caller: Caller, resource_name: str, uuid: str, select: list[str] | None = None,
            include_trash: bool = False) -> Record:
        resource = self.registry[resource_name]
        with self._operation(caller, resource) as ctx:
            if (found := resource.lookup(ctx, uuid, select)) is not None:
                return found
            if not UUID_RE.fullmatch(uuid):
                raise NotFound(f"{uuid!r} is not a UUID")
            row = self._find(ctx, resource, uuid)
            if getattr(row, "is_trashed", False) and not include_trash:
                raise NotFound(f"{resource.name[:-1].replace('_', ' ')} {uuid} is in the trash "
                               "(include_trash=true to see it; untrash to use it again)")
            resource.guard_read(ctx, row)
            record = self._render(resource, row, caller, select)
            return record if select else {**record, **resource.rights(ctx, row)}

    def list(self, caller: Caller, resource_name: str, params: ListParams) -> Record:
        """A page, from the list cache while the database is unchanged (backend/list_cache.py)."""
        key = self.list_cache.key(caller, resource_name, params)
        version = self.db.written()  # read before the rows: a write after this makes the answer stale
        if key is not None and (kept := self.list_cache.get(key, version)) is not None:
            return kept
        answer = self._list(caller, resource_name, params)
        if key is not None:
            self.list_cache.put(key, version, answer)
        return answer

    def _list(self, caller: Caller, resource_name: str, params: ListParams) -> Record:
        resource = self.registry[resource_name]
        model: Any = resource.model
        limit = max(0, min(params.limit, self.config.api.max_items_per_response))
        with self._operation(caller, resource, read_only=True) as ctx:
            query = select(model)
            if not caller.is_admin:
                query = query.where(resource.readable_clause(ctx.perms))
            if hasattr(model, "is_trashed") and not params.include_trash:
                query = query.where(model.is_trashed.is_(False))
            unfilterable = resource.unfilterable_for(ctx)
            query = apply_filters(query, model, params.filters, unfilterable)
            ordered = apply_order(query, model, params.order, unfilterable).offset(params.offset)
            page = ordered.limit(limit and limit + 1)  # a row past the page: if none, the count is known
            # plain rows through the session's connection, not ORM objects: a page of 1000 renders
            # several times faster, and the ORM's loading layer cost more than the query
            result = ctx.session.connection().execute(page.with_only_columns(*model.__table__.columns))
            keys, rows = tuple(result.keys()), list(result.all())
            more, rows = len(rows) > limit, rows[:limit]
            available = None
            if params.count != "none":
                if limit and not more and (rows or not params.offset):
                    available = params.offset + len(rows)  # the page ended within the limit: no count needed
                else:  # a plain count with the same WHERE: SQLite can answer from an index
                    counting = select(func.count()).select_from(model)
                    if query.whereclause is not None:
                        counting = counting.where(query.whereclause)
                    available = ctx.session.scalar(counting)
            if params.select:
                items = [self._render(resource, row, caller, params.select, listing=True) for row in rows]
            else:
                items = self._render_page(resource, keys, rows, caller)
            resource.redact_listing(ctx, rows, items)
        envelope: Record = {"kind": resource.kind + "List", "etag": "", "self_link": "",
                            "offset": params.offset, "limit": limit, "items": items}
        if available is not None:
            envelope["items_available"] = available
        return envelope

    def collection_files(self, caller: Caller, key: str, query: FilesQuery) -> Record:
        collections = self.registry["collections"]
        assert isinstance(collections, Collections)
        with self._operation(caller, collections) as ctx:
            return collections.files(ctx, key, query)

    def create(self, caller: Caller, resource_name: str, attrs: Record,
               ensure_unique_name: bool = False, cluster_id: str | None = None) -> Record:
        if cluster_id and cluster_id != self.config.cluster_id:
            raise Unprocessable(f"cluster_id {cluster_id!r}: this cluster does not federate with it")
        resource = self.registry[resource_name]
        attrs = self._writable(caller, resource, attrs)
        login = self.config.login.satellite_of(self.config.cluster_id)
        if login and resource.issued_by_login_cluster:
            raise Unprocessable(f"{resource.name} of this federation are created on its login cluster {login}")
        with self._operation(caller, resource) as ctx:
            owner = resource.owner_for_create(ctx, attrs.pop("owner_uuid", None))
            resource.validate(ctx, attrs)
            stamp = now()
            fields: Record = {
                "uuid": new_uuid(self.config.cluster_id, resource.infix), "owner_uuid": owner,
                "created_at": stamp, "modified_at": stamp, "modified_by_user_uuid": caller.user_uuid,
                **resource.derived_fields(ctx, attrs, owner),
            }
            if resource.unique_names and attrs.get("name") is not None:  # unnamed objects never collide
                attrs["name"] = self._unique_name(ctx.session, resource.model, owner, attrs["name"],
                                                  ensure_unique_name)
            row = resource.model(**fields, **{k: v for k, v in attrs.items() if k not in fields})
            ctx.session.add(row)
            ctx.session.flush()
            resource.after_write(ctx, row, None)
            self._index_properties(ctx.session, row)
            Database.changed(ctx.session, resource.name)
            return self._render(resource, row, caller)

    def update(self, caller: Caller, resource_name: str, uuid: str, attrs: Record) -> Record:
        resource = self.registry[resource_name]
        if resource.trashable and "is_trashed" in attrs:
            # Arvados clients trash by update ({"is_trashed": true}); same effect as the trash action.
            rest = {key: value for key, value in attrs.items() if key != "is_trashed"}
            if not attrs["is_trashed"]:
                restored = self.untrash(caller, resource_name, uuid)
                return self.update(caller, resource_name, uuid, rest) if rest else restored
            if rest:
                self.update(caller, resource_name, uuid, rest)
            return self.trash(caller, resource_name, uuid)
        attrs = self._writable(caller, resource, attrs)
        with self._operation(caller, resource) as ctx:
            row = self._find(ctx, resource, uuid, WRITE)
            if "owner_uuid" in attrs and attrs["owner_uuid"] != row.owner_uuid:
                target = attrs["owner_uuid"]
                if not ctx.perms.can(MANAGE, row.uuid, row.owner_uuid) or not ctx.can_write_into(target):
                    raise Forbidden(f"moving {uuid} to {target} needs manage on it and write on the target")
            resource.validate(ctx, attrs, row)
            attrs.update(resource.derived_fields(ctx, attrs, row.owner_uuid, row))
            if resource.unique_names and attrs.get("name") is not None:  # unnamed objects never collide
                attrs["name"] = self._unique_name(ctx.session, resource.model, attrs.get("owner_uuid", row.owner_uuid),
                                                  attrs["name"], False, exclude=row.uuid)
            before = {key: getattr(row, key, None) for key in attrs}
            for key, value in attrs.items():
                setattr(row, key, value)
            ctx.session.flush()
            resource.after_write(ctx, row, before)
            if "properties" in attrs:
                self._index_properties(ctx.session, row)
            row.modified_at = now()
            row.modified_by_user_uuid = caller.user_uuid
            ctx.session.flush()
            Database.changed(ctx.session, resource.name)
            return self._render(resource, row, caller)

    def delete(self, caller: Caller, resource_name: str, uuid: str) -> Record:
        resource = self.registry[resource_name]
        if resource.trashable:
            return self.trash(caller, resource_name, uuid)
        with self._operation(caller, resource) as ctx:
            row = self._find(ctx, resource, uuid, WRITE)
            resource.check_delete(ctx, row)
            out = self._render(resource, row, caller)
            ctx.session.delete(row)
            ctx.session.flush()
            Database.changed(ctx.session, resource.name)
            return out

    def trash(self, caller: Caller, resource_name: str, uuid: str) -> Record:
        resource = self._trashable(resource_name)
        with self._operation(caller, resource) as ctx:
            row = self._find(ctx, resource, uuid, WRITE)
            stamp = now()
            row.is_trashed, row.trash_at = True, stamp
            row.delete_at = stamp + timedelta(seconds=self.config.collections.blob_trash_lifetime)
            row.modified_at = stamp
            resource.after_write(ctx, row, {"is_trashed": False})
            return self._render(resource, row, caller)

    def untrash(self, caller: Caller, resource_name: str, uuid: str) -> Record:
        resource = self._trashable(resource_name)
        with self._operation(caller, resource) as ctx:
            row: Any = ctx.session.get(resource.model, uuid)
            if row is None or not ctx.perms.can(WRITE, row.uuid, row.owner_uuid):
                raise NotFound(f"{uuid} not found")
            row.is_trashed, row.trash_at, row.delete_at = False, None, None
            row.modified_at = now()
            resource.after_write(ctx, row, {"is_trashed": True})
            return self._render(resource, row, caller)

    def act(self, caller: Caller, resource_name: str, uuid: str, action: str, method: str,
            params: Record) -> Record:
        """An action on one object beyond CRUD (`containers/{uuid}/lock`), run by its resource."""
        resource = self.registry[resource_name]
        if resource.object_actions.get(action) != method:
            raise NotFound(f"no such action: {method} {resource_name}/{{uuid}}/{action}")
        with self._operation(caller, resource) as ctx:
            row = self._find(ctx, resource, uuid)
            result = resource.act(ctx, action, row, params)
            ctx.session.flush()
            return result if result is not None else self._render(resource, row, caller)

    def _trashable(self, resource_name: str) -> Resource:
        resource = self.registry[resource_name]
        if not resource.trashable:
            raise NotFound(f"{resource_name} have no trash")
        return resource

    # ------------------------------------------------------------ the change stream
    def readable_changes(self, caller: Caller, changes: Changes) -> Changes:
        """Each kind judged by its resource with the caller's permission snapshot (cached: most
        batches cost no query); a kind no resource serves is told to admins only."""
        if caller.is_admin:
            return changes
        heard: set[int] = set()
        with self.db.session() as session:
            perms = self._permissions(session, caller)
            for kind in {change["kind"] for change in changes}:
                if (resource := self.registry.resources.get(kind)) is not None:
                    of_kind = [change for change in changes if change["kind"] == kind]
                    heard.update(change["seq"] for change in resource.readable_changes(perms, of_kind))
        return [change for change in changes if change["seq"] in heard]

    # ------------------------------------------------------------ keep services and gateways
    def keep_services(self, caller: Caller | None = None) -> Record:
        """Synthesized from the configuration, as Arvados does when its table is empty. Where a
        gateway's data lies (`gateway_source`) is shown only to those who may register through it."""
        items = []
        for url in self.config.keep_service_urls:
            scheme, _, rest = url.partition("://")
            host, _, port = rest.rstrip("/").rpartition(":")
            items.append({
                "kind": "arvados#keepService",
                "uuid": f"{self.config.cluster_id}-bi6l4-{hashlib.md5(url.encode()).hexdigest()[:15]}",
                "owner_uuid": self.config.system_user_uuid,
                "service_host": host, "service_port": int(port), "service_ssl_flag": scheme == "https",
                "service_type": "disk", "read_only": False,
            })
        registrable = self._registrable(caller, [str(g.uuid) for g in self.config.gateways])
        for gateway in self.config.gateways:  # found by the +K@<uuid> hints of the blocks they serve
            items.append({
                "kind": "arvados#keepService", "uuid": gateway.uuid, "owner_uuid": self.config.system_user_uuid,
                "service_host": gateway.host, "service_port": gateway.port, "service_ssl_flag": False,
                "service_type": gateway.service_type, "read_only": True,
                **({"gateway_source": gateway.source} if gateway.uuid in registrable else {}),
            })
        return {"kind": "arvados#keepServiceList", "items": items, "items_available": len(items),
                "offset": 0, "limit": len(items)}

    def _registrable(self, caller: Caller | None, gateway_uuids: Sequence[str]) -> set[str]:
        """Those of the gateways `caller` may register through (none for an anonymous caller)."""
        if caller is None or not gateway_uuids:
            return set()
        with self.db.session() as session:
            perms = self._permissions(session, caller)
            return {uuid for uuid in gateway_uuids if may_register(perms, uuid, self.config.system_user_uuid)}

    def gateway_registrant(self, token: str | None, gateway_uuid: str) -> Caller:
        """Who registers data through (or moves blocks to) one of this cluster's gateways: a token
        this cluster validates (visitors' too, as for the API), with full scope, of an admin or of
        someone granted on the gateway (auth/gateways.py). 401 or 403 otherwise."""
        if not token:
            raise Unauthorized(f"registering data through gateway {gateway_uuid} needs a token of this cluster")
        caller = self.authenticate(token)
        if "all" not in caller.scopes:
            raise Forbidden(f"this token's scopes do not allow registering data through gateway {gateway_uuid}")
        if not self._registrable(caller, [gateway_uuid]):
            raise refusal(gateway_uuid, caller.user_uuid)
        return caller
