"""Database models. Column names follow the Arvados API fields so records render directly."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[Any]: JSON}
    # `properties.<key>` filters answered from PropertyIndex (kept up to date on every write)
    indexed_properties: ClassVar[bool] = False


class Common:
    """Fields every Arvados object has."""

    uuid: Mapped[str] = mapped_column(String(27), primary_key=True)
    owner_uuid: Mapped[str] = mapped_column(String(27), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    modified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    modified_by_user_uuid: Mapped[str | None] = mapped_column(String(27))


class User(Common, Base):
    __tablename__ = "users"
    email: Mapped[str | None] = mapped_column(String(255), index=True)
    username: Mapped[str | None] = mapped_column(String(255), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    prefs: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApiClientAuthorization(Common, Base):
    __tablename__ = "api_client_authorizations"
    api_token: Mapped[str] = mapped_column(String(255), index=True)  # the secret part only
    user_uuid: Mapped[str] = mapped_column(String(27), index=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refreshes_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scopes: Mapped[list[Any]] = mapped_column(default=lambda: ["all"])
    # the token that made this one through the API: it lives only while that one does (a container's
    # token, a visitor's token validated by its home); null for tokens the cluster or an admin issued
    parent_uuid: Mapped[str | None] = mapped_column(String(27))


class Group(Common, Base):
    __tablename__ = "groups"
    indexed_properties = True
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    group_class: Mapped[str] = mapped_column(String(32), default="project")
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    trash_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delete_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_trashed: Mapped[bool] = mapped_column(Boolean, default=False)
    residency: Mapped[str | None] = mapped_column(String(32))  # "cluster": contents stay on this cluster


class Link(Common, Base):
    __tablename__ = "links"
    link_class: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    tail_uuid: Mapped[str | None] = mapped_column(String(27), index=True)  # tags have none
    head_uuid: Mapped[str] = mapped_column(String(27), index=True)
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Collection(Common, Base):
    __tablename__ = "collections"
    indexed_properties = True
    name: Mapped[str | None] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    portable_data_hash: Mapped[str] = mapped_column(String(64), index=True)
    manifest_text: Mapped[str] = mapped_column(Text)  # +A signatures stripped
    replication_desired: Mapped[int | None] = mapped_column(Integer)
    storage_classes_desired: Mapped[list[Any]] = mapped_column(default=lambda: ["default"])
    file_count: Mapped[int] = mapped_column(Integer, default=0)
    file_size_total: Mapped[int] = mapped_column(BigInteger, default=0)
    trash_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delete_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_trashed: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    residency: Mapped[str | None] = mapped_column(String(32), index=True)  # "cluster": blocks stay here

    # the migrations also add PostgreSQL pattern-ops indexes on names, which only they can express
    __table_args__ = (
        Index("ix_collections_owner_name", "owner_uuid", "name"),
        # ending in uuid, the tie-breaker of every order: an index scan serves the whole ORDER BY
        Index("ix_collections_owner_modified_uuid", "owner_uuid", "modified_at", "uuid"),
        Index("ix_collections_owner_trashed_name_uuid", "owner_uuid", "is_trashed", "name", "uuid"),
    )


class Workflow(Common, Base):
    """A CWL workflow; `definition` is its (packed) document, which names its inputs by `keep:` PDH."""

    __tablename__ = "workflows"
    name: Mapped[str | None] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    definition: Mapped[str | None] = mapped_column(Text)


class GatewayBlock(Base):
    """Where a gateway finds a block's bytes: a range of an external object (a file under its root,
    an S3 object, a URL), with the object's version when registered. A block whose bytes no longer
    hash to it is marked stale and never served."""

    __tablename__ = "gateway_blocks"
    gateway_uuid: Mapped[str] = mapped_column(String(27), primary_key=True)
    locator: Mapped[str] = mapped_column(String(64), primary_key=True)  # md5+size
    object: Mapped[str] = mapped_column(Text)
    offset: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[str] = mapped_column(String(255))  # mtime+size for a file, ETag for S3/HTTP
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    checksum: Mapped[str | None] = mapped_column(String(64), nullable=True)  # xxh3-128, taken with the md5


class CollectionBlock(Base):
    """A block a collection's manifest reads (by md5), one row per pair, kept up to date on every write
    of a manifest (db/block_index.py): which collections read a block is an index lookup, not a scan
    of every manifest. Rows of a collection deleted outright are ignored by the lookups (they join)."""

    __tablename__ = "collection_blocks"
    md5: Mapped[str] = mapped_column(String(32), primary_key=True)
    collection_uuid: Mapped[str] = mapped_column(String(27), primary_key=True, index=True)


class PropertyIndex(Base):
    """One row per top-level property of a collection or group: lets `properties.<key>` filters
    use an index on SQLite and PostgreSQL alike instead of scanning every JSON document."""

    __tablename__ = "property_index"
    object_uuid: Mapped[str] = mapped_column(String(27), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_property_index_key_value", "key", "value"),)


def property_rows(uuid: str, properties: dict[str, Any] | None) -> list[dict[str, str]]:
    """PropertyIndex rows for an object: strings as they are, other values as JSON text."""
    import json

    return [{"object_uuid": uuid, "key": key, "value": value if isinstance(value, str) else json.dumps(value)}
            for key, value in (properties or {}).items()]



class ContainerSpec:
    """What a request asks to run and its container runs: the fields reuse compares, and more."""

    command: Mapped[list[Any]] = mapped_column(default=list)
    container_image: Mapped[str | None] = mapped_column(String(255))
    cwd: Mapped[str] = mapped_column(String(1024), default=".")
    environment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    mounts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secret_mounts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    output_path: Mapped[str | None] = mapped_column(String(1024))
    output_glob: Mapped[list[Any]] = mapped_column(default=list)
    output_properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    output_storage_classes: Mapped[list[Any]] = mapped_column(default=lambda: ["default"])
    runtime_constraints: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scheduling_parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    runtime_token: Mapped[str | None] = mapped_column(String(255))  # write-only: never rendered
    runtime_user_uuid: Mapped[str | None] = mapped_column(String(27))


class ContainerRequest(Common, ContainerSpec, Base):
    """What a user asks to run (Arvados' container_requests). secret_mounts and runtime_token are
    write-only: never rendered."""

    __tablename__ = "container_requests"
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="Uncommitted", index=True)
    requesting_container_uuid: Mapped[str | None] = mapped_column(String(27), index=True)
    container_uuid: Mapped[str | None] = mapped_column(String(27), index=True)
    container_count: Mapped[int] = mapped_column(Integer, default=0)
    container_count_max: Mapped[int] = mapped_column(Integer, default=3)
    output_name: Mapped[str | None] = mapped_column(String(255))
    output_ttl: Mapped[int] = mapped_column(Integer, default=0)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    use_existing: Mapped[bool] = mapped_column(Boolean, default=True)
    log_uuid: Mapped[str | None] = mapped_column(String(27))
    output_uuid: Mapped[str | None] = mapped_column(String(27))
    cumulative_cost: Mapped[float] = mapped_column(Float, default=0.0)


class Container(Common, ContainerSpec, Base):
    """What actually runs (Arvados' containers), shared by every equal request (reuse_key)."""

    __tablename__ = "containers"
    state: Mapped[str] = mapped_column(String(16), default="Queued", index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    log: Mapped[str | None] = mapped_column(String(64))
    output: Mapped[str | None] = mapped_column(String(64))
    runtime_status: Mapped[dict[str, Any]] = mapped_column(default=dict)
    progress: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    auth_uuid: Mapped[str | None] = mapped_column(String(27), index=True)
    locked_by_uuid: Mapped[str | None] = mapped_column(String(27))
    lock_count: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    reuse_key: Mapped[str] = mapped_column(String(32), index=True)  # md5 of what reuse compares


MODELS: dict[str, type[Base]] = {model.__tablename__: model for model in (
    User, ApiClientAuthorization, Group, Link, Collection, Workflow, ContainerRequest, Container)}


class ReleasedCopy(Base):
    """A copy of a block a collection stopped reading when its data moved (same PDH, other hints):
    released once nothing on the cluster has read it for a whole signing TTL (any locator signed
    for it has expired by then), unless a collection points at it again."""

    __tablename__ = "released_copies"
    locator: Mapped[str] = mapped_column(String(64), primary_key=True)  # md5+size
    place: Mapped[str] = mapped_column(String(40), primary_key=True)  # "keep" or a gateway's uuid
    since: Mapped[float] = mapped_column(Float)  # epoch seconds


class Identifier(Common, Base):
    """A dataset identifier (DOI, ARK, URN, URL, compact id, drs://, keep:) a collection or a project
    carries, in its normal form (resolver/identifiers.py). Readable by whoever may read the object it
    names; `published` ones are also told to the federation's resolvers (resolver/registrations.py)."""

    __tablename__ = "identifiers"
    head_uuid: Mapped[str] = mapped_column(String(27), index=True)  # the collection or project
    identifier: Mapped[str] = mapped_column(String(2048), index=True)
    scheme: Mapped[str] = mapped_column(String(16))
    published: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("head_uuid", "identifier", name="uq_identifiers_head_identifier"),)


class RegistryChange(Base):
    """The change cursor of what this cluster tells resolvers: every write that may change a published
    identifier (`id:<identifier>`) or the set of PDHs held here (`pdh:<pdh>`) appends its key, in the
    writer's transaction. A resolver acknowledges the last `seq` it applied; the next push carries
    the current state of the keys noted after it."""

    __tablename__ = "registry_changes"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(2100))

    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - sequence numbers are never reused


class FileChecksum(Base):
    """A file's checksum (DRS `checksums`), computed once by reading it and kept: content-addressed
    (PDH + path), so it never goes stale and says nothing to a reader who could not read the file."""

    __tablename__ = "file_checksums"
    pdh: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16), primary_key=True)  # md5, sha-256
    path: Mapped[str] = mapped_column(Text, primary_key=True)  # "" for the whole collection
    checksum: Mapped[str] = mapped_column(String(128))
