"""Who is calling: a token turned into a Caller, validated here or (for another cluster's users) by
the token's home cluster, and cached briefly. Also the tokens and users this cluster issues itself
(the system user, `archi cluster init`'s admin)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..backend.interface import Caller, Record
from ..config import ClusterConfig
from ..db.models import ApiClientAuthorization, Container, User
from ..db.unit import Database
from ..errors import ArchipelagoError, NotFound, Unauthorized
from ..formats.tokens import V2Token, new_secret, parse_v2, salt_secret, salt_token, secret_of, try_parse_v2
from ..ids import INFIX, new_uuid
from ..resources.names import kind
from ..times import aware, now, parse_time, timestamp
from .remote import RemoteTokenValidator

# how long a validated token is trusted without asking the database again; revocations and user
# changes made through this server take effect at once (the cache is cleared)
AUTH_CACHE_SECONDS = 10.0


class Identity:
    def __init__(self, config: ClusterConfig, db: Database, validator: RemoteTokenValidator | None = None):
        self.config, self.db = config, db
        self.validator = validator
        self._callers: dict[str, tuple[float, Caller]] = {}  # "remote token" -> (valid until, caller)
        db.on_cache_inputs_changed(self._callers.clear)

    def bootstrap(self) -> None:
        """The system user exists from the first start (the root token acts as it)."""
        with self.db.session() as session:
            if session.get(User, self.config.system_user_uuid) is None:
                self._add_user(session, self.config.system_user_uuid, username="root", first_name="root",
                               is_admin=True)

    def create_admin(self, email: str = "admin@localhost", username: str = "admin") -> str:
        """A new admin user of this cluster; its uuid (`archi cluster init`)."""
        with self.db.session() as session:
            user = self._add_user(session, new_uuid(self.config.cluster_id, INFIX["User"]), username=username,
                                  first_name="Admin", email=email, is_admin=True)
            return user.uuid

    def _add_user(self, session: Session, uuid: str, username: str, first_name: str, is_admin: bool,
                  email: str | None = None) -> User:
        stamp = now()
        user = User(uuid=uuid, owner_uuid=self.config.system_user_uuid, created_at=stamp, modified_at=stamp,
                    email=email, username=username, first_name=first_name, last_name="", is_admin=is_admin,
                    is_active=True, prefs={})
        session.add(user)
        return user

    def create_token(self, user_uuid: str, scopes: list[str] | None = None,
                     expires_at: datetime | None = None) -> str:
        """A fresh v2 token for a user (used by `archi cluster init`, tests and the API)."""
        with self.db.session() as session:
            stamp = now()
            row = ApiClientAuthorization(
                uuid=new_uuid(self.config.cluster_id, INFIX["ApiClientAuthorization"]), owner_uuid=user_uuid,
                user_uuid=user_uuid, api_token=new_secret(), scopes=scopes or ["all"], expires_at=expires_at,
                created_at=stamp, modified_at=stamp, modified_by_user_uuid=user_uuid,
            )
            session.add(row)
            return f"v2/{row.uuid}/{row.api_token}"

    # ---------------------------------------------------------------- authentication
    def known_caller(self, token: str, remote: str | None = None) -> Caller | None:
        """The caller behind a token validated a moment ago, without touching the database."""
        self.db.catch_up()
        cached = self._callers.get(f"{remote or ''} {token}")
        return cached[1] if cached is not None and cached[0] > time.monotonic() else None

    def authenticate(self, token: str, remote: str | None = None) -> Caller:
        """The caller behind a token. `remote` is the `?remote=` of identity lookups: the cluster a
        salted token was made for, which is only honoured there (reference §5.4)."""
        cached = self.known_caller(token, remote)
        if cached is not None:
            return cached
        caller = self._authenticate(token, remote)
        if len(self._callers) > 10_000:
            self._callers.clear()
        ttl = min(AUTH_CACHE_SECONDS, self.config.login.remote_token_refresh)
        self._callers[f"{remote or ''} {token}"] = (time.monotonic() + ttl, caller)
        return caller

    def _authenticate(self, token: str, remote: str | None) -> Caller:
        if token == self.config.system_root_token:
            return Caller(self.config.system_user_uuid, token, is_admin=True,
                          authorization_uuid=f"{self.config.cluster_id}-gj3su-000000000000000")
        v2 = try_parse_v2(token)
        if v2 is None:
            with self.db.session() as session:
                row = session.scalar(select(ApiClientAuthorization).where(ApiClientAuthorization.api_token == token))
                if row is None:
                    raise Unauthorized("invalid or revoked token")
                return self._caller_for(session, row, token)
        here = self.config.cluster_id
        if v2.issuer != here and not v2.salted:
            # another cluster's full token (a LoginCluster federation sends them): checked and kept
            # here only in its salted form, so this cluster never holds a secret it could replay
            v2 = parse_v2(salt_token(token, here))
        with self.db.session() as session:
            row = session.get(ApiClientAuthorization, v2.uuid)
            if row is not None:
                salted_ok = remote not in (None, here) and v2.issuer == here \
                    and salt_secret(row.api_token, remote) == v2.secret
                if row.api_token == v2.secret or salted_ok:
                    if row.refreshes_at is None or aware(row.refreshes_at) > now():
                        return self._caller_for(session, row, token)
                elif v2.issuer == here:
                    raise Unauthorized("invalid or revoked token")
        if v2.issuer == here or self.validator is None or not self.validator.knows(v2.issuer):
            raise Unauthorized("invalid or revoked token (issued by a cluster this one does not federate with)")
        return self._validate_remote(v2, token)

    def _validate_remote(self, salted: V2Token, token: str) -> Caller:
        """Ask the token's home who it is (with the salted form), mirror the user, remember the token."""
        assert self.validator is not None
        home = salted.issuer
        try:
            identity = self.validator.validate(home, str(salted))
        except ArchipelagoError as exc:
            if exc.status == 401:
                with self.db.session() as session:  # revoked at home: forget our cached copy
                    session.execute(delete(ApiClientAuthorization).where(ApiClientAuthorization.uuid == salted.uuid))
            raise
        with self.db.session() as session:
            user = self._mirror_user(session, home, identity.user)
            stamp = now()
            row = session.get(ApiClientAuthorization, salted.uuid)
            if row is None:
                row = ApiClientAuthorization(uuid=salted.uuid, created_at=stamp, modified_at=stamp)
                session.add(row)
            row.api_token, row.user_uuid, row.owner_uuid = salted.secret, user.uuid, user.uuid
            row.scopes = identity.authorization.get("scopes") or ["all"]
            row.expires_at = parse_time(identity.authorization.get("expires_at"))
            row.refreshes_at = stamp + timedelta(seconds=self.config.login.remote_token_refresh)
            session.flush()
            return self._caller_for(session, row, token)

    def _mirror_user(self, session: Session, home: str, remote_user: dict[str, Any]) -> User:
        """The remote user, as this cluster knows them. Users of the login cluster are this
        federation's users: their admin and active flags hold everywhere; other visitors are never
        admins here, and active only if the remote allows it."""
        from_login_cluster = home == self.config.login.login_cluster
        stamp = now()
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
        if (user.is_active, user.is_admin) != flags:  # cached permissions must not outlive them
            Database.changed(session, "users")
        return user

    def _caller_for(self, session: Session, row: ApiClientAuthorization, token: str) -> Caller:
        if row.expires_at is not None and aware(row.expires_at) <= now():
            raise Unauthorized("token expired")
        user = session.get(User, row.user_uuid)
        if user is None or not user.is_active:
            raise Unauthorized("the token's user is not active")
        # a container's own token: the container runs here, so what it reads does not leave
        container = session.scalar(select(Container.uuid).where(Container.auth_uuid == row.uuid,
                                                                Container.state.in_(("Locked", "Running"))))
        return Caller(user.uuid, token, is_admin=user.is_admin, authorization_uuid=row.uuid,
                      scopes=tuple(row.scopes or ["all"]), container_uuid=container)

    # ---------------------------------------------------------------- the caller's own records
    def token_record(self, caller: Caller, render: Any) -> Record:
        with self.db.session() as session:
            row = session.get(ApiClientAuthorization, caller.authorization_uuid)
            if row is None:  # the system root token has no row
                stamp = timestamp(now())
                return {"kind": kind("api_client_authorizations"), "uuid": caller.authorization_uuid,
                        "owner_uuid": caller.user_uuid, "user_uuid": caller.user_uuid, "scopes": ["all"],
                        "expires_at": None, "created_at": stamp, "modified_at": stamp}
            out: Record = render(row)
            out["api_token"] = secret_of(caller.token)
            return out

    def user_record(self, caller: Caller, render: Any) -> Record:
        with self.db.session() as session:
            user = session.get(User, caller.user_uuid)
            if user is None:
                raise NotFound("current user not found")
            out: Record = render(user)
            return out

