"""Who is calling: a token turned into a Caller, validated here or (for another cluster's users) by
the token's home cluster, and cached briefly. Also the tokens and users this cluster issues itself
(the system user, `archi cluster init`'s admin).

A token made with another token through the API is bound to it (`parent_uuid`): it expires no later,
and it is refused once any token it descends from is gone or expired — a container's token when the
container ends, a visitor's token when its home no longer vouches for it. A visitor is vouched for
by their home at most `login.remote_token_refresh` ago, whichever of their tokens they use here."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import ClusterConfig
from ..db.models import ApiClientAuthorization, Container, User
from ..db.unit import Database
from ..db.upsert import insert_missing
from ..errors import ArchipelagoError, Unauthorized, Unprocessable
from ..formats.tokens import V2Token, new_secret, parse_v2, salt_secret, salt_token, try_parse_v2
from ..ids import INFIX, new_uuid
from ..times import aware, now, parse_time
from .caller import Caller
from .remote import RemoteTokenValidator

# how long a validated token is trusted without asking the database again; revocations and user
# changes made through this server take effect at once (the cache is cleared)
AUTH_CACHE_SECONDS = 10.0
# tokens made from tokens made from ...: every use walks the chain, so it stays short
MAX_TOKEN_DEPTH = 8
# visitors' tokens one authentication may re-validate with their home (each is a round trip)
MAX_REFRESHES = 4


class _Stale(Exception):
    """A visitor's token that vouches for the caller is due to be asked about again at its home
    (done outside the database session that found it). `fallback`: it vouches for the user, not for
    this token's own lineage, so if its home refuses it another of the user's tokens may serve."""

    def __init__(self, token: V2Token, fallback: bool):
        super().__init__(token.uuid)
        self.token, self.fallback = token, fallback


def expired(row: ApiClientAuthorization) -> bool:
    return row.expires_at is not None and aware(row.expires_at) <= now()


def _due(voucher: ApiClientAuthorization) -> bool:
    """Is this visitor's token due to be asked about again at its home?"""
    return voucher.refreshes_at is not None and aware(voucher.refreshes_at) <= now()


def bound_expiry(requested: datetime | None, parent: ApiClientAuthorization | None) -> datetime | None:
    """A token's expiry under its parent's: a later (or no) expiry is clamped to the parent's, as
    Arvados clamps to MaxTokenLifetime — clients ask for tokens without an expiry, and refusing them
    would break them for no gain."""
    if parent is None or parent.expires_at is None:
        return requested
    limit = aware(parent.expires_at)
    return limit if requested is None or aware(requested) > limit else requested


def lineage_depth(session: Session, row: ApiClientAuthorization) -> int:
    """How many tokens `row` descends from (1 for a token nobody made through the API)."""
    depth = 1
    while row.parent_uuid is not None and depth <= MAX_TOKEN_DEPTH:
        parent = session.get(ApiClientAuthorization, row.parent_uuid)
        if parent is None:
            break
        row, depth = parent, depth + 1
    return depth


def issuing_parent(session: Session, caller: Caller, owner: str) -> ApiClientAuthorization | None:
    """The token a new token, made by `caller` for `owner`, is bound to: the caller's own. Except
    when an admin gives a token to another user with a token that is itself free (a grant, which
    should outlive the admin's session); the system root token has no row and binds nothing. A
    token made with a container's or a visitor's token, or one of theirs, is bound whoever it is for."""
    row = session.get(ApiClientAuthorization, caller.authorization_uuid)
    if row is None:
        return None
    if owner != caller.user_uuid and row.parent_uuid is None and row.refreshes_at is None \
            and session.scalar(select(Container.uuid).where(Container.auth_uuid == row.uuid).limit(1)) is None:
        return None
    if lineage_depth(session, row) >= MAX_TOKEN_DEPTH:
        raise Unprocessable(f"a token made from {MAX_TOKEN_DEPTH - 1} generations of tokens cannot make another")
    return row


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
                     expires_at: datetime | None = None, made_by: Caller | None = None) -> str:
        """A fresh v2 token for a user (used by `archi cluster init`, tests and the API); bound to
        the token of `made_by` as `issuing_parent` says."""
        with self.db.session() as session:
            stamp = now()
            parent = issuing_parent(session, made_by, user_uuid) if made_by is not None else None
            row = ApiClientAuthorization(
                uuid=new_uuid(self.config.cluster_id, INFIX["ApiClientAuthorization"]), owner_uuid=user_uuid,
                user_uuid=user_uuid, api_token=new_secret(), scopes=scopes or ["all"],
                expires_at=bound_expiry(expires_at, parent), parent_uuid=parent.uuid if parent else None,
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
        caller = self._authenticate_vouched(token, remote)
        if len(self._callers) > 10_000:
            self._callers.clear()
        # never longer than a visitor's home is trusted: a token bound to a visitor's token must be
        # refused within the refresh period of its home's revocation, cached or not
        ttl = min(AUTH_CACHE_SECONDS, self.config.login.remote_token_refresh)
        self._callers[f"{remote or ''} {token}"] = (time.monotonic() + ttl, caller)
        return caller

    def _authenticate_vouched(self, token: str, remote: str | None) -> Caller:
        """`_authenticate`, asking visitors' homes again about the tokens that vouch for the caller
        whenever one is due (outside any database session: a home may take a while to answer)."""
        refreshed: set[str] = set()
        for attempt in range(MAX_REFRESHES + 1):
            try:
                return self._authenticate(token, remote, frozenset(refreshed))
            except _Stale as stale:
                if attempt == MAX_REFRESHES:
                    break
                try:
                    self._revalidate(stale.token)
                except ArchipelagoError as exc:
                    if stale.fallback and exc.status == 401:
                        continue  # that one is forgotten now; another of the user's tokens may vouch
                    raise
                refreshed.add(stale.token.uuid)
        raise Unauthorized("this user's home refused the tokens of theirs this cluster knows")

    def _authenticate(self, token: str, remote: str | None, refreshed: frozenset[str]) -> Caller:
        if token == self.config.system_root_token:
            return Caller(self.config.system_user_uuid, token, is_admin=True,
                          authorization_uuid=f"{self.config.cluster_id}-gj3su-000000000000000")
        v2 = try_parse_v2(token)
        if v2 is None:
            with self.db.session() as session:
                row = session.scalar(select(ApiClientAuthorization).where(ApiClientAuthorization.api_token == token))
                if row is None:
                    raise Unauthorized("invalid or revoked token")
                return self._caller_for(session, row, token, refreshed)
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
                    if row.refreshes_at is None or aware(row.refreshes_at) > now() or row.uuid in refreshed:
                        return self._caller_for(session, row, token, refreshed)
                elif v2.issuer == here:
                    raise Unauthorized("invalid or revoked token")
        if v2.issuer == here or self.validator is None or not self.validator.knows(v2.issuer):
            raise Unauthorized("invalid or revoked token (issued by a cluster this one does not federate with)")
        self._revalidate(v2)
        with self.db.session() as session:
            row = session.get(ApiClientAuthorization, v2.uuid)
            if row is None:  # revoked between the two
                raise Unauthorized("invalid or revoked token")
            return self._caller_for(session, row, token, refreshed | {v2.uuid})

    def _revalidate(self, salted: V2Token) -> None:
        """Ask a visitor's token's home who it is (with the salted form), mirror the user, and
        remember the token until the next refresh; forget it if its home refuses it. Committed
        before the caller is judged, so a user their home deactivated stays inactive here."""
        home = salted.issuer
        if self.validator is None or not self.validator.knows(home):
            raise Unauthorized(f"this cluster does not federate with {home}, the home of this token")
        try:
            identity = self.validator.validate(home, str(salted))
        except ArchipelagoError as exc:
            if exc.status == 401:
                # revoked at home: forget our cached copy (only if it is the secret refused: a wrong
                # secret sent under a known uuid must not make us drop a visitor's valid token)
                with self.db.session() as session:
                    cached = session.get(ApiClientAuthorization, salted.uuid)
                    if cached is not None and cached.api_token == salted.secret:
                        session.delete(cached)
                        Database.changed(session, "api_client_authorizations")  # and callers cached from it
            raise
        with self.db.session() as session:
            user = self._mirror_user(session, home, identity.user)
            stamp = now()
            row = session.get(ApiClientAuthorization, salted.uuid)
            if row is None:  # concurrent first requests with this token: one inserts, all update
                row = insert_missing(session, ApiClientAuthorization, {
                    "uuid": salted.uuid, "owner_uuid": user.uuid, "user_uuid": user.uuid, "api_token": salted.secret,
                    "created_at": stamp, "modified_at": stamp})
            row.api_token, row.user_uuid, row.owner_uuid = salted.secret, user.uuid, user.uuid
            row.scopes = identity.authorization.get("scopes") or ["all"]
            row.expires_at = parse_time(identity.authorization.get("expires_at"))
            row.refreshes_at = stamp + timedelta(seconds=self.config.login.remote_token_refresh)

    def _mirror_user(self, session: Session, home: str, remote_user: dict[str, Any]) -> User:
        """The remote user, as this cluster knows them. Users of the login cluster are this
        federation's users: their admin and active flags hold everywhere; other visitors are never
        admins here, and active only if the remote allows it."""
        from_login_cluster = home == self.config.login.login_cluster
        stamp = now()
        user = session.get(User, remote_user["uuid"])
        first = user is None
        if user is None:  # a visitor's concurrent first requests all mirror them: one inserts, none fails
            user = insert_missing(session, User, {
                "uuid": remote_user["uuid"], "owner_uuid": self.config.system_user_uuid, "created_at": stamp,
                "modified_at": stamp, "prefs": {}, "is_admin": False, "is_active": False})
        flags = (None, None) if first else (user.is_active, user.is_admin)
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

    def _caller_for(self, session: Session, row: ApiClientAuthorization, token: str,
                    refreshed: frozenset[str]) -> Caller:
        if expired(row):
            raise Unauthorized("token expired")
        user = session.get(User, row.user_uuid)
        if user is None or not user.is_active:
            raise Unauthorized("the token's user is not active")
        voucher, fallback = self._check_lineage(session, row), False
        if voucher is None and user.uuid[:5] != self.config.cluster_id:
            voucher, fallback = self._user_voucher(session, user.uuid), True
        if voucher is not None and voucher.uuid not in refreshed and _due(voucher):
            raise _Stale(V2Token(voucher.uuid, voucher.api_token), fallback)
        # a container's own token: the container runs here, so what it reads does not leave
        container = session.scalar(select(Container.uuid).where(Container.auth_uuid == row.uuid,
                                                                Container.state.in_(("Locked", "Running"))))
        return Caller(user.uuid, token, is_admin=user.is_admin, authorization_uuid=row.uuid,
                      scopes=tuple(row.scopes or ["all"]), container_uuid=container)

    @staticmethod
    def _check_lineage(session: Session, row: ApiClientAuthorization) -> ApiClientAuthorization | None:
        """Refuse a token made from one that is gone, expired or whose user is inactive (at any
        generation); else the visitor's token in its lineage (its own if it is one) that vouches for it."""
        voucher = row if row.refreshes_at is not None else None
        for _ in range(MAX_TOKEN_DEPTH):
            if row.parent_uuid is None:
                return voucher
            parent = session.get(ApiClientAuthorization, row.parent_uuid)
            if parent is None or expired(parent):
                raise Unauthorized(f"the token this one was made with ({row.parent_uuid}) was revoked or expired")
            owner = session.get(User, parent.user_uuid)
            if owner is None or not owner.is_active:
                raise Unauthorized(f"the user of the token this one was made with ({parent.uuid}) is not active")
            if voucher is None and parent.refreshes_at is not None:
                voucher = parent
            row = parent
        raise Unauthorized("made from too long a chain of tokens")

    @staticmethod
    def _user_voucher(session: Session, user_uuid: str) -> ApiClientAuthorization:
        """For a visitor's token their home did not issue (a container's here, an admin's grant):
        the token of theirs their home vouched for last. Without one, their home can no longer
        say they are still active, so nothing of theirs is accepted."""
        candidates = session.scalars(select(ApiClientAuthorization).where(
            ApiClientAuthorization.user_uuid == user_uuid, ApiClientAuthorization.refreshes_at.is_not(None))
            .order_by(ApiClientAuthorization.refreshes_at.desc()))
        for candidate in candidates:
            if not expired(candidate):
                return candidate
        raise Unauthorized(f"no token from {user_uuid[:5]} vouches for {user_uuid} here any more (use one "
                           "from that cluster again)")
