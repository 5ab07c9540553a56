"""LocalBackend: the Backend interface on this cluster's own database."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..auth.permissions import MANAGE, READ, WRITE, PermissionCache, Permissions
from ..auth.remote import RemoteTokenValidator, RemoteValidationError
from ..auth.salt import salt_secret, salt_token
from ..auth.tokens import TokenFormatError, V2Token, new_secret, parse_v2
from ..config import ClusterConfig
from ..db.changes import ChangeSignal, signal_path
from ..db.models import (
    MODELS,
    ApiClientAuthorization,
    Base,
    Collection,
    Group,
    Link,
    PropertyIndex,
    User,
    Workflow,
    kind,
    property_rows,
)
from ..ids import INFIX, PDH_RE, UUID_RE, new_uuid
from ..keep import manifest as manifests
from ..keep.locator import EMPTY_HASH
from ..keep.signing import SignatureError, sign_manifest, strip_signatures, verify_locator
from .backend import ApiError, BadRequest, Caller, Forbidden, ListParams, NotFound, Unauthorized, Unprocessable
from .filters import apply_filters, apply_order
from .residency import POLICIES, refuse, restricted_blocks, restricted_projects

# what only the login cluster creates, in a federation that has one
LOGIN_CLUSTER_RESOURCES = ("users", "api_client_authorizations")
# what a client may set on create/update; everything else is the server's
WRITABLE = {
    "users": {"email", "username", "first_name", "last_name", "is_admin", "is_active", "prefs", "owner_uuid"},
    "api_client_authorizations": {"expires_at", "scopes", "owner_uuid"},
    "groups": {"name", "description", "group_class", "properties", "owner_uuid", "trash_at", "delete_at",
               "residency"},
    "links": {"link_class", "name", "tail_uuid", "head_uuid", "properties", "owner_uuid"},
    "collections": {"name", "description", "properties", "manifest_text", "replication_desired",
                    "storage_classes_desired", "owner_uuid", "portable_data_hash", "trash_at", "delete_at",
                    "residency"},
    "workflows": {"name", "description", "definition", "owner_uuid"},
}
ADMIN_ONLY = {"users": {"is_admin", "is_active"}, "collections": {"residency"}, "groups": {"residency"}}
LIST_HIDDEN = {"collections": {"manifest_text", "unsigned_manifest_text"}}
EMPTY_LOCATOR_PREFIX = EMPTY_HASH + "+0"
COLUMNS = {name: [c.key for c in model.__table__.columns] for name, model in MODELS.items()}
TIMESTAMP_COLUMNS = {name: [c.key for c in model.__table__.columns if isinstance(c.type, DateTime)]
                     for name, model in MODELS.items()}
# the objects that can own others (or be shared), by the type infix of their UUIDs
OWNING_MODELS = {INFIX[model.__name__]: model for model in (Collection, Group, Link, Workflow)}
# how long a validated token is trusted without asking the database again; revocations and user
# changes made through this server take effect at once (the cache is cleared)
AUTH_CACHE_SECONDS = 10.0


def now() -> datetime:
    return datetime.now(UTC)


def timestamp(value: datetime | None) -> str | None:
    """Arvados' `2026-11-22T22:36:02.123456Z` (isoformat: several times faster than strftime)."""
    if value is None:
        return None
    if value.tzinfo is not None:  # SQLite hands back naive UTC datetimes, PostgreSQL aware ones
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"invalid timestamp {value!r}") from None


class LocalBackend:
    def __init__(self, config: ClusterConfig, sessions: sessionmaker[Session]):
        self.config = config
        self.sessions = sessions
        self.key = config.collections.blob_signing_key.encode()
        self.ttl = config.collections.blob_signing_ttl
        self.permission_cache = PermissionCache()
        # other API processes on this database drop their caches as soon as this one commits
        self.changes = ChangeSignal(signal_path(config.database_url, config.cluster_id))
        self.validator = RemoteTokenValidator(config) if config.remote_clusters else None
        self._callers: dict[str, tuple[float, Caller]] = {}  # token -> (valid until, caller)

    # ------------------------------------------------------------ plumbing
    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self.sessions() as session:
            try:
                yield session
                changed = session.info.pop("changed", set())
                session.commit()
                self._forget(changed)  # after the commit, so no reader re-caches the old state
            except IntegrityError as exc:
                session.rollback()
                raise Unprocessable(f"conflicts with an existing record: {exc.orig}") from None
            except BaseException:
                session.rollback()
                raise

    def bootstrap(self) -> None:
        """The system user exists from the first start (the root token acts as it)."""
        with self._session() as session:
            if session.get(User, self.config.system_user_uuid) is None:
                stamp = now()
                session.add(User(uuid=self.config.system_user_uuid, owner_uuid=self.config.system_user_uuid,
                                 created_at=stamp, modified_at=stamp, first_name="root", last_name="",
                                 username="root", is_admin=True, is_active=True, prefs={}))

    def _model(self, resource: str) -> type[Base]:
        try:
            return MODELS[resource]
        except KeyError:
            raise NotFound(f"no such resource type {resource!r}") from None

    def _render(self, resource: str, row: Any, caller: Caller | None = None,
                select_: list[str] | None = None, listing: bool = False) -> dict[str, Any]:
        """An API record. Lists render pages of up to 1000 rows: this is on the hot path."""
        values = row._asdict() if hasattr(row, "_asdict") else {key: getattr(row, key) for key in COLUMNS[resource]}
        for key in TIMESTAMP_COLUMNS[resource]:
            values[key] = timestamp(values[key])
        out: dict[str, Any] = {"kind": kind(resource), **values}
        out["etag"] = hashlib.md5(f"{row.uuid}{out['modified_at']}".encode()).hexdigest()[:25]
        wanted = set(select_) if select_ else None
        if resource == "collections":
            if wanted is not None or not listing:  # manifests are left out of plain listings
                out["unsigned_manifest_text"] = row.manifest_text
                if wanted is None or "manifest_text" in wanted:
                    out["manifest_text"] = self._signed(row, caller) if caller else row.manifest_text
            out["current_version_uuid"] = row.uuid
            out["storage_classes_confirmed"] = []
            out["replication_confirmed"] = None
        elif resource == "api_client_authorizations":
            out["api_token"] = row.api_token
            out["full_name"] = None
        elif resource == "users":
            out["full_name"] = " ".join(p for p in (row.first_name, row.last_name) if p)
            out["is_invited"] = row.is_active
        if wanted is not None:
            return {k: v for k, v in out.items() if k in wanted or k == "kind"}
        if listing:
            for hidden in LIST_HIDDEN.get(resource, ()):
                out.pop(hidden, None)
        return out

    def _signed(self, row: Collection, caller: Caller) -> str:
        if not self.config.collections.blob_signing or row.is_trashed:
            return row.manifest_text
        expiry = int(time.time()) + self.ttl
        if row.trash_at is not None:
            trash_at = row.trash_at if row.trash_at.tzinfo else row.trash_at.replace(tzinfo=UTC)
            expiry = min(expiry, int(trash_at.timestamp()))
        return sign_manifest(row.manifest_text, caller.token, expiry, self.ttl, self.key)

    def _outside(self, caller: Caller) -> bool:
        """Is this reader outside the cluster: a request forwarded by a peer, or a visiting user?"""
        return caller.via is not None or caller.user_uuid[:5] != self.config.cluster_id

    @staticmethod
    def _reader(caller: Caller) -> str:
        return f"{caller.user_uuid}" + (f" via cluster {caller.via}" if caller.via else "")

    @staticmethod
    def _restricted(row: Any, projects: set[str]) -> bool:
        """Under a residency policy: its own, or one of a project above it (`projects`)."""
        return bool(row.residency) or row.owner_uuid in projects

    def restricted_blocks(self) -> set[str]:
        with self._session() as session:
            return restricted_blocks(session)

    def _permissions(self, session: Session, caller: Caller) -> Permissions:
        self._catch_up()
        return self.permission_cache.get(session, caller.user_uuid, caller.is_admin)

    @staticmethod
    def _changed(session: Session, resource: str) -> None:
        """Note a write to `resource`; caches it may affect are cleared once the session commits."""
        session.info.setdefault("changed", set()).add(resource)

    def _forget(self, changed: set[str]) -> None:
        if changed & {"groups", "links", "users", "api_client_authorizations"}:
            self._drop_caches()
            self.changes.bump()

    def _drop_caches(self) -> None:
        self.permission_cache.invalidate()
        self._callers.clear()

    def _catch_up(self) -> None:
        """Drop the caches if another process committed something they depend on."""
        if self.changes.changed():
            self._drop_caches()

    def _find(self, session: Session, caller: Caller, resource: str, uuid: str, level: int = READ) -> Any:
        model = self._model(resource)
        row = session.get(model, uuid)
        perms = self._permissions(session, caller)
        if row is None or not self._visible(perms, resource, row):
            raise NotFound(f"{resource[:-1].replace('_', ' ')} {uuid} not found")
        if level > READ and not self._allowed(perms, resource, row, level):
            raise Forbidden(f"you may read {uuid} but not change it")
        return row

    def _visible(self, perms: Permissions, resource: str, row: Any) -> bool:
        if resource == "users":
            return True  # like Arvados' "All users" group: users see each other
        if resource == "api_client_authorizations":
            return perms.is_admin or row.user_uuid == perms.user_uuid
        if resource == "links" and perms.can(READ, row.head_uuid, None):
            return True
        return perms.can(READ, row.uuid, row.owner_uuid)

    def _allowed(self, perms: Permissions, resource: str, row: Any, level: int) -> bool:
        if resource == "users":
            return perms.is_admin or row.uuid == perms.user_uuid
        if resource == "api_client_authorizations":
            return perms.is_admin or row.user_uuid == perms.user_uuid
        if resource == "links" and row.link_class == "permission":
            return perms.can(MANAGE, row.head_uuid, self._owner_of(perms.session, row.head_uuid))
        return perms.can(level, row.uuid, row.owner_uuid)

    def _owner_of(self, session: Session, uuid: str) -> str | None:
        """Who owns an object; its UUID's infix names its table (one query, not one per table)."""
        model = OWNING_MODELS.get(uuid[6:11])
        return None if model is None else session.scalar(select(model.owner_uuid).where(model.uuid == uuid))

    # ------------------------------------------------------------ identity
    def this_cluster(self) -> LocalBackend:
        return self

    def known_caller(self, token: str, remote: str | None = None) -> Caller | None:
        """The caller behind a token validated moments ago, without touching the database (so
        the API can skip a thread hop), or None."""
        self._catch_up()
        cached = self._callers.get(f"{remote or ''} {token}")
        return cached[1] if cached is not None and cached[0] > time.monotonic() else None

    def authenticate(self, token: str, remote: str | None = None) -> Caller:
        """The caller behind a token. `remote` is the `?remote=` of identity lookups: the cluster a
        salted token was made for, which is only honoured there (reference §5.4)."""
        cached = self.known_caller(token, remote)
        if cached is not None:
            return cached
        key = f"{remote or ''} {token}"
        caller = self._authenticate(token, remote)
        if len(self._callers) > 10_000:
            self._callers.clear()
        ttl = min(AUTH_CACHE_SECONDS, self.config.login.remote_token_refresh)
        self._callers[key] = (time.monotonic() + ttl, caller)
        return caller

    def _authenticate(self, token: str, remote: str | None) -> Caller:
        if token == self.config.system_root_token:
            return Caller(self.config.system_user_uuid, token, is_admin=True,
                          authorization_uuid=f"{self.config.cluster_id}-gj3su-000000000000000")
        try:
            v2 = parse_v2(token)
        except TokenFormatError:
            with self._session() as session:
                row = session.scalar(select(ApiClientAuthorization).where(ApiClientAuthorization.api_token == token))
                if row is None:
                    raise Unauthorized("invalid or revoked token") from None
                return self._caller_for(session, row, token)
        home = v2.uuid[:5]
        if home != self.config.cluster_id and len(v2.secret) != 40:
            # another cluster's full token (a LoginCluster federation sends them): checked and kept
            # here only in its salted form, so this cluster never holds a secret it could replay
            v2 = parse_v2(salt_token(token, self.config.cluster_id))
        with self._session() as session:
            row = session.get(ApiClientAuthorization, v2.uuid)
            if row is not None:
                salted_ok = remote not in (None, self.config.cluster_id) and home == self.config.cluster_id \
                    and salt_secret(row.api_token, remote) == v2.secret  # type: ignore[arg-type]
                if row.api_token == v2.secret or salted_ok:
                    fresh = row.refreshes_at is None or _aware(row.refreshes_at) > now()
                    if fresh:
                        return self._caller_for(session, row, token)
                elif home == self.config.cluster_id:
                    raise Unauthorized("invalid or revoked token")
        if home == self.config.cluster_id or self.validator is None or not self.validator.knows(home):
            raise Unauthorized("invalid or revoked token (issued by a cluster this one does not federate with)")
        return self._validate_remote(home, v2, token)

    def _validate_remote(self, home: str, salted: V2Token, token: str) -> Caller:
        """Ask the token's home who it is (with the salted form), mirror the user, remember the token."""
        assert self.validator is not None
        try:
            identity = self.validator.validate(home, str(salted))
        except RemoteValidationError as exc:
            if exc.status == 401:
                with self._session() as session:  # revoked at home: forget our cached copy
                    session.execute(delete(ApiClientAuthorization).where(ApiClientAuthorization.uuid == salted.uuid))
            raise ApiError(str(exc), exc.status) from None
        remote_user = identity.user
        # users of the login cluster are this federation's users: their admin and active flags hold
        # everywhere; other visitors are never admins here, and active only if the remote allows it
        from_login_cluster = home == self.config.login.login_cluster
        stamp = now()
        with self._session() as session:
            user = session.get(User, remote_user["uuid"])
            if user is None:
                user = User(uuid=remote_user["uuid"], owner_uuid=self.config.system_user_uuid, created_at=stamp,
                            modified_at=stamp, prefs={}, is_admin=False)
                session.add(user)
            flags = (user.is_active, user.is_admin)
            user.email = remote_user.get("email")
            user.first_name = remote_user.get("first_name")
            user.last_name = remote_user.get("last_name")
            active = bool(remote_user.get("is_active"))
            user.is_active = active and (from_login_cluster or self.config.remote_clusters[home].activate_users)
            user.is_admin = from_login_cluster and bool(remote_user.get("is_admin"))
            user.modified_at = stamp
            row = session.get(ApiClientAuthorization, salted.uuid)
            if row is None:
                row = ApiClientAuthorization(uuid=salted.uuid, created_at=stamp, modified_at=stamp)
                session.add(row)
            row.api_token, row.user_uuid, row.owner_uuid = salted.secret, user.uuid, user.uuid
            row.scopes = identity.authorization.get("scopes") or ["all"]
            row.expires_at = parse_time(identity.authorization.get("expires_at"))
            row.refreshes_at = stamp + timedelta(seconds=self.config.login.remote_token_refresh)
            session.flush()
            if (user.is_active, user.is_admin) != flags:  # cached permissions must not outlive them
                self._changed(session, "users")
            return self._caller_for(session, row, token)

    def _caller_for(self, session: Session, row: ApiClientAuthorization, token: str) -> Caller:
        if row.expires_at is not None and _aware(row.expires_at) <= now():
            raise Unauthorized("token expired")
        user = session.get(User, row.user_uuid)
        if user is None or not user.is_active:
            raise Unauthorized("the token's user is not active")
        return Caller(user.uuid, token, is_admin=user.is_admin, authorization_uuid=row.uuid,
                      scopes=tuple(row.scopes or ["all"]))

    def user_current(self, caller: Caller) -> dict[str, Any]:
        with self._session() as session:
            user = session.get(User, caller.user_uuid)
            if user is None:
                raise NotFound("current user not found")
            return self._render("users", user)

    def token_current(self, caller: Caller) -> dict[str, Any]:
        with self._session() as session:
            row = session.get(ApiClientAuthorization, caller.authorization_uuid)
            if row is None:  # the system root token has no row
                stamp = timestamp(now())
                return {"kind": kind("api_client_authorizations"), "uuid": caller.authorization_uuid,
                        "owner_uuid": caller.user_uuid, "user_uuid": caller.user_uuid, "scopes": ["all"],
                        "expires_at": None, "created_at": stamp, "modified_at": stamp}
            out = self._render("api_client_authorizations", row)
            out["api_token"] = caller.token.split("/")[2] if caller.token.startswith("v2/") else caller.token
            return out

    def create_token(self, user_uuid: str, scopes: list[str] | None = None,
                     expires_at: datetime | None = None) -> str:
        """A fresh v2 token for a user (used by `archi cluster init`, tests and the API)."""
        with self._session() as session:
            row = self._new_token_row(user_uuid, scopes, expires_at)
            session.add(row)
            return f"v2/{row.uuid}/{row.api_token}"

    def _new_token_row(self, user_uuid: str, scopes: list[str] | None,
                       expires_at: datetime | None) -> ApiClientAuthorization:
        stamp = now()
        return ApiClientAuthorization(
            uuid=new_uuid(self.config.cluster_id, INFIX["ApiClientAuthorization"]), owner_uuid=user_uuid,
            user_uuid=user_uuid, api_token=new_secret(), scopes=scopes or ["all"], expires_at=expires_at,
            created_at=stamp, modified_at=stamp, modified_by_user_uuid=user_uuid,
        )

    # ------------------------------------------------------------ generic operations
    def get(self, caller: Caller, resource: str, uuid: str, select: list[str] | None = None) -> dict[str, Any]:
        if resource == "collections" and PDH_RE.fullmatch(uuid):
            return self._collection_by_pdh(caller, uuid, select)
        if not UUID_RE.fullmatch(uuid):
            raise NotFound(f"{uuid!r} is not a UUID")
        with self._session() as session:
            row = self._find(session, caller, resource, uuid)
            if resource == "collections" and self._outside(caller) \
                    and self._restricted(row, restricted_projects(session)):
                raise refuse(self.config.cluster_id, f"collection {uuid}", self._reader(caller))
            return self._render(resource, row, caller, select)

    def _collection_by_pdh(self, caller: Caller, pdh: str, select_: list[str] | None) -> dict[str, Any]:
        """Any readable collection with that content; the one trashed last, since signatures clamp to trash_at."""
        with self._session() as session:
            perms = self._permissions(session, caller)
            rows = session.scalars(select(Collection).where(Collection.portable_data_hash == pdh,
                                                            Collection.is_trashed.is_(False)))
            readable = [r for r in rows if perms.can(READ, r.uuid, r.owner_uuid)]
            if not readable:
                raise NotFound(f"collection {pdh} not found")
            if self._outside(caller):
                projects = restricted_projects(session)  # once, not per candidate
                readable = [r for r in readable if not self._restricted(r, projects)]
                if not readable:
                    raise refuse(self.config.cluster_id, f"collection {pdh}", self._reader(caller))
            best = max(readable, key=lambda r: (r.trash_at is None, r.trash_at or now()))
            out = self._render("collections", best, caller, select_)
            out["uuid"] = pdh  # as Arvados: a content address, not one record
            return out

    def list(self, caller: Caller, resource: str, params: ListParams) -> dict[str, Any]:
        model = self._model(resource)
        limit = max(0, min(params.limit, self.config.api.max_items_per_response))
        with self._session() as session:
            query = select(model)
            perms = self._permissions(session, caller)
            if not caller.is_admin:
                query = query.where(self._readable_clause(perms, resource, model))
            if hasattr(model, "is_trashed") and not params.include_trash:
                query = query.where(model.is_trashed.is_(False))
            query = apply_filters(query, model, params.filters)
            available = None
            if params.count != "none":  # a plain count with the same WHERE: SQLite can answer from an index
                counting = select(func.count()).select_from(model)
                if query.whereclause is not None:
                    counting = counting.where(query.whereclause)
                available = session.scalar(counting)
            query = apply_order(query, model, params.order).offset(params.offset).limit(limit)
            # plain rows, not ORM objects: a page of 1000 renders several times faster
            rows = list(session.execute(query.with_only_columns(*model.__table__.columns)))
            items = [self._render(resource, row, caller, params.select, listing=True) for row in rows]
            if resource == "collections" and self._outside(caller):
                # judged on the rows, not the rendered items: `select` may have left out the fields
                projects = restricted_projects(session)
                for row, item in zip(rows, items, strict=True):
                    if self._restricted(row, projects):  # metadata yes, manifests never
                        for key in ("manifest_text", "unsigned_manifest_text"):
                            item.pop(key, None)
        envelope: dict[str, Any] = {"kind": kind(resource) + "List", "etag": "", "self_link": "",
                                    "offset": params.offset, "limit": limit, "items": items}
        if available is not None:
            envelope["items_available"] = available
        return envelope

    def _readable_clause(self, perms: Permissions, resource: str, model: Any) -> Any:
        if resource == "users":
            return model.uuid.is_not(None)
        if resource == "api_client_authorizations":
            return model.user_uuid == perms.user_uuid
        owners, shared = perms.readable_owners(), perms.shared_objects()
        parts = [model.owner_uuid.in_(owners)]
        if shared:  # an empty IN () inside an OR keeps the planner from using indexes
            parts.append(model.uuid.in_(shared))
        if resource == "links":
            parts.append(model.head_uuid.in_(owners | shared))
        return parts[0] if len(parts) == 1 else or_(*parts)

    def create(self, caller: Caller, resource: str, attrs: dict[str, Any],
               ensure_unique_name: bool = False, cluster_id: str | None = None) -> dict[str, Any]:
        if cluster_id and cluster_id != self.config.cluster_id:
            raise Unprocessable(f"cluster_id {cluster_id!r}: this cluster does not federate with it")
        model = self._model(resource)
        attrs = self._writable(caller, resource, attrs)
        login = self.config.login.satellite_of(self.config.cluster_id)
        if login and resource in LOGIN_CLUSTER_RESOURCES:
            raise Unprocessable(f"{resource} of this federation are created on its login cluster {login}")
        with self._session() as session:
            perms = self._permissions(session, caller)
            stamp = now()
            owner = attrs.pop("owner_uuid", None) or caller.user_uuid
            if resource == "users":
                if not caller.is_admin:
                    raise Forbidden("only admins create users")
                owner = self.config.system_user_uuid
            elif resource == "api_client_authorizations":
                owner = owner if caller.is_admin else caller.user_uuid
            elif owner != caller.user_uuid and not perms.can(WRITE, owner, self._owner_of(session, owner)):
                raise Forbidden(f"you cannot write into {owner}")
            fields: dict[str, Any] = {
                "uuid": new_uuid(self.config.cluster_id, INFIX[model.__name__]), "owner_uuid": owner,
                "created_at": stamp, "modified_at": stamp, "modified_by_user_uuid": caller.user_uuid,
            }
            if resource == "collections":
                fields.update(self._collection_fields(caller, attrs))
            elif resource == "api_client_authorizations":
                row = self._new_token_row(owner, attrs.get("scopes"), parse_time(attrs.get("expires_at")))
                session.add(row)
                session.flush()
                out = self._render(resource, row)
                out["api_token"] = row.api_token
                return out
            elif resource == "links":
                self._check_link(session, perms, attrs)
            elif resource == "groups":
                if attrs.get("group_class", "project") not in ("project", "role", "filter"):
                    raise Unprocessable("group_class must be project, role or filter")
                if not attrs.get("name"):
                    raise Unprocessable("a group needs a name")
            if "name" in attrs and hasattr(model, "name") and resource in ("collections", "groups"):
                attrs["name"] = self._unique_name(session, model, owner, attrs["name"], ensure_unique_name)
            for key in ("trash_at", "delete_at", "expires_at"):
                if key in attrs:
                    attrs[key] = parse_time(attrs[key])
            row = model(**fields, **{k: v for k, v in attrs.items() if k not in fields})
            session.add(row)
            session.flush()
            self._index_properties(session, resource, row)
            self._changed(session, resource)
            return self._render(resource, row, caller)

    @staticmethod
    def _index_properties(session: Session, resource: str, row: Any) -> None:
        if resource in ("collections", "groups"):
            session.execute(delete(PropertyIndex).where(PropertyIndex.object_uuid == row.uuid))
            if rows := property_rows(row.uuid, row.properties):
                session.execute(insert(PropertyIndex), rows)

    def _writable(self, caller: Caller, resource: str, attrs: dict[str, Any]) -> dict[str, Any]:
        allowed = WRITABLE.get(resource, set())
        unknown = set(attrs) - allowed - {"uuid", "kind", "etag", "created_at", "modified_at",
                                          "modified_by_user_uuid", "unsigned_manifest_text"}
        if unknown:
            raise Unprocessable(f"unknown or read-only attribute(s) for {resource}: {', '.join(sorted(unknown))}")
        if not caller.is_admin:
            forbidden = set(attrs) & ADMIN_ONLY.get(resource, set())
            if forbidden:
                raise Forbidden(f"only admins may set {', '.join(sorted(forbidden))}")
        if attrs.get("residency") not in (None, *POLICIES):
            raise Unprocessable(f"residency must be one of {sorted(POLICIES)} or null")
        return {k: v for k, v in attrs.items() if k in allowed}

    def _unique_name(self, session: Session, model: Any, owner: str, name: str, ensure: bool,
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
            raise Unprocessable(f"name {name!r} is already in use in {owner} (use ensure_unique_name)")
        for n in range(2, 10_000):
            candidate = f"{name} ({n})"
            if not taken(candidate):
                return candidate
        raise Unprocessable(f"no unique name found for {name!r}")

    def _check_link(self, session: Session, perms: Permissions, attrs: dict[str, Any]) -> None:
        for key in ("link_class", "tail_uuid", "head_uuid"):
            if not attrs.get(key):
                raise Unprocessable(f"a link needs {key}")
        if attrs["link_class"] == "permission":
            if attrs.get("name") not in ("can_read", "can_write", "can_manage"):
                raise Unprocessable("a permission link's name is can_read, can_write or can_manage")
            head = attrs["head_uuid"]
            if not perms.can(MANAGE, head, self._owner_of(session, head)):
                raise Forbidden(f"sharing {head} needs can_manage on it")

    def _collection_fields(self, caller: Caller, attrs: dict[str, Any]) -> dict[str, Any]:
        """Validate the manifest, check its signatures for this caller, store it stripped."""
        text = attrs.pop("manifest_text", "") or ""
        try:
            parsed = manifests.parse(text)
            tree = parsed.tree()
        except manifests.ManifestError as exc:
            raise Unprocessable(f"invalid manifest_text: {exc}") from None
        if self.config.collections.blob_signing and not caller.is_admin:
            for stream in parsed.streams:
                for locator in stream.locators:
                    if locator.startswith(EMPTY_LOCATOR_PREFIX):
                        continue
                    try:
                        verify_locator(locator, caller.token, self.ttl, self.key)
                    except SignatureError as exc:
                        raise Forbidden(f"block {locator[:43]}: {exc} (re-upload or use a freshly signed "
                                        f"manifest)") from None
        stored = strip_signatures(text)
        pdh = manifests.portable_data_hash(stored)
        given = attrs.pop("portable_data_hash", None)
        if given and given.split("+")[0] != pdh.split("+")[0]:
            raise Unprocessable(f"portable_data_hash {given} does not match the manifest ({pdh})")
        return {
            "manifest_text": stored,
            "portable_data_hash": pdh,
            "file_count": sum(len(files) for files in tree.values()),
            "file_size_total": sum(s[2] for files in tree.values() for segs in files.values() for s in segs),
        }

    def update(self, caller: Caller, resource: str, uuid: str, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = self._writable(caller, resource, attrs)
        with self._session() as session:
            row = self._find(session, caller, resource, uuid, WRITE)
            perms = self._permissions(session, caller)
            if "owner_uuid" in attrs and attrs["owner_uuid"] != row.owner_uuid:
                target = attrs["owner_uuid"]
                if not perms.can(MANAGE, row.uuid, row.owner_uuid) or (
                    target != caller.user_uuid and not perms.can(WRITE, target, self._owner_of(session, target))
                ):
                    raise Forbidden(f"moving {uuid} to {target} needs manage on it and write on the target")
            if resource == "collections" and "manifest_text" in attrs:
                attrs.update(self._collection_fields(caller, attrs))
                row.version += 1
            if resource == "links":
                self._check_link(session, perms, {**{c: getattr(row, c) for c in
                                                     ("link_class", "name", "tail_uuid", "head_uuid")}, **attrs})
            if "name" in attrs and resource in ("collections", "groups"):
                attrs["name"] = self._unique_name(session, type(row), attrs.get("owner_uuid", row.owner_uuid),
                                                  attrs["name"], False, exclude=row.uuid)
            for key in ("trash_at", "delete_at", "expires_at"):
                if key in attrs:
                    attrs[key] = parse_time(attrs[key])
            for key, value in attrs.items():
                setattr(row, key, value)
            if "properties" in attrs:
                self._index_properties(session, resource, row)
            row.modified_at = now()
            row.modified_by_user_uuid = caller.user_uuid
            session.flush()
            self._changed(session, resource)
            return self._render(resource, row, caller)

    def delete(self, caller: Caller, resource: str, uuid: str) -> dict[str, Any]:
        if resource in ("collections", "groups"):
            return self.trash(caller, resource, uuid)
        with self._session() as session:
            row = self._find(session, caller, resource, uuid, WRITE)
            out = self._render(resource, row, caller)
            session.delete(row)
            session.flush()
            self._changed(session, resource)
            return out

    def trash(self, caller: Caller, resource: str, uuid: str) -> dict[str, Any]:
        with self._session() as session:
            row = self._find(session, caller, resource, uuid, WRITE)
            stamp = now()
            row.is_trashed, row.trash_at = True, stamp
            row.delete_at = stamp + timedelta(seconds=self.config.collections.blob_trash_lifetime)
            row.modified_at = stamp
            return self._render(resource, row, caller)

    def untrash(self, caller: Caller, resource: str, uuid: str) -> dict[str, Any]:
        with self._session() as session:
            model = self._model(resource)
            row = session.get(model, uuid)
            perms = self._permissions(session, caller)
            if row is None or not perms.can(WRITE, row.uuid, row.owner_uuid):
                raise NotFound(f"{uuid} not found")
            row.is_trashed, row.trash_at, row.delete_at = False, None, None
            row.modified_at = now()
            return self._render(resource, row, caller)

    # ------------------------------------------------------------ keep services
    def keep_services(self) -> dict[str, Any]:
        """Synthesized from the configuration, as Arvados does when its table is empty."""
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
        return {"kind": "arvados#keepServiceList", "items": items, "items_available": len(items),
                "offset": 0, "limit": len(items)}

