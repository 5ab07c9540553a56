"""The container lifecycle with Arvados' semantics (reference arvados-compute.md §3).

Requests: Uncommitted -> Committed -> Final. Committing one finds an equal container to share
(reuse) or queues a new one. Containers: Queued -> Locked -> Running -> Complete | Cancelled, and
Locked -> Queued. When a container ends, a system failure (Cancelled) is retried while a request
still wants it and has tries left; otherwise every request on it becomes Final, with output and
log collections of its own. A container's priority is the highest of its live requests'.

All of it runs inside the caller's database session: a request and its container change together
or not at all.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ..auth.permissions import READ
from ..config import ClusterConfig
from ..db.models import (
    ApiClientAuthorization,
    Collection,
    Container,
    ContainerRequest,
    Link,
    PropertyIndex,
    property_rows,
)
from ..db.unit import Database
from ..errors import Unprocessable
from ..formats.tokens import new_secret
from ..ids import INFIX, PDH_RE, UUID_RE, new_uuid
from ..times import now
from .access import Access, Verdict
from .reuse import resolve_constraints, reuse_key
from .validation import EMPTY_PDH

REQUEST_TRANSITIONS = {"Uncommitted": {"Committed"}, "Committed": {"Final"}, "Final": set()}
CONTAINER_TRANSITIONS = {
    "Queued": {"Locked", "Cancelled"},
    "Locked": {"Queued", "Running", "Cancelled"},
    "Running": {"Complete", "Cancelled"},
    "Complete": {"Cancelled"},
    "Cancelled": set(),
}
FINAL_CONTAINER_STATES = ("Complete", "Cancelled")
ALWAYS_UPDATABLE = frozenset({"owner_uuid", "state", "name", "description", "properties"})
UPDATABLE_WHEN_COMMITTED = ALWAYS_UPDATABLE | {"priority", "container_count_max", "container_uuid",
                                               "cumulative_cost"}
CONTAINER_FIELDS = ("command", "cwd", "environment", "output_path", "output_glob", "output_properties",
                    "output_storage_classes", "scheduling_parameters")
TOKEN_MARGIN = timedelta(hours=1)  # a container's token outlives its time limit by this much
DEFAULT_TOKEN_LIFETIME = timedelta(days=1)  # for containers without max_run_time
PRIORITY_SCALE = 1 << 50


class Lifecycle:
    def __init__(self, config: ClusterConfig, session: Session, access: Access):
        self.config, self.session = config, session
        self.access = access  # what the caller (who commits, or the container that updates itself) may read

    # ---------------------------------------------------------------- requests
    def check_request_update(self, row: ContainerRequest, attrs: dict[str, Any]) -> None:
        """Arvados' rule: after commit only some fields change; a re-sent unchanged value is fine."""
        changed = {k for k, v in attrs.items() if getattr(row, k, None) != v}
        target = attrs.get("state", row.state)
        if target != row.state and target not in REQUEST_TRANSITIONS[row.state]:
            raise Unprocessable(f"a container request cannot go from {row.state} to {target}")
        if row.state == "Uncommitted":
            return
        allowed = UPDATABLE_WHEN_COMMITTED if row.state == "Committed" else ALWAYS_UPDATABLE
        if refused := sorted(changed - allowed):
            raise Unprocessable(f"a {row.state} container request cannot change {', '.join(refused)}")

    def commit(self, request: ContainerRequest, caller_container: Container | None) -> None:
        """Find or queue the container for a request that has just been committed (its fields
        checked by compute/validation.py; what it reads is judged here, as whoever commits it)."""
        if caller_container is not None and request.requesting_container_uuid is None:
            request.requesting_container_uuid = caller_container.uuid
        # Arvados' rule: the container runs as the user who commits, whose permissions judged its inputs
        request.runtime_user_uuid = self.access.user_uuid
        attrs = self._container_attrs(request)  # refuses what this user may not read, even for a preview
        if request.priority == 0:
            return  # a preview: committed, but nothing will run until it gets a priority
        key = reuse_key(attrs)
        container = self._reusable(key, self._own_only(attrs)) if request.use_existing else None
        if container is None:
            container = self._new_container(request, attrs, key)
        request.container_uuid = container.uuid
        request.container_count += 1
        self.session.flush()
        if container.state in FINAL_CONTAINER_STATES:
            self._finalize(request, container)
        else:
            self.update_priority(container)

    def _container_attrs(self, request: ContainerRequest) -> dict[str, Any]:
        attrs: dict[str, Any] = {field: getattr(request, field) for field in CONTAINER_FIELDS}
        attrs["container_image"] = self._resolve_image(request.container_image)
        attrs["mounts"] = {target: self._resolve_mount(target, mount)
                           for target, mount in (request.mounts or {}).items()}
        attrs["secret_mounts"] = request.secret_mounts or {}
        attrs["runtime_constraints"] = resolve_constraints(request.runtime_constraints or {})
        return attrs

    def _resolve_image(self, image: str | None) -> str | None:
        """A PDH as it is, if the requester may read it (or it is left to the federation); a
        collection UUID or `repo:tag` (arv-keepdocker's links) to the PDH of the collection that
        holds the image, among those the requester can read (another user's link of the same name
        neither shadows theirs nor lends them an image they cannot read). On a cluster whose
        runtime runs no images (bubblewrap) a name stays as it is: the executor's log says it is
        not used."""
        if not image:
            return image
        refused = Unprocessable(f"container image {image!r} is not in Keep on this cluster "
                                "(store it with arv-keepdocker, or name it by PDH)")
        if PDH_RE.fullmatch(image):
            if self.access.pdh(image) is Verdict.HIDDEN:
                raise refused
            return image
        if UUID_RE.fullmatch(image):
            pdh = self.access.collection_pdh(image)
        else:
            repo, _, tag = image.partition(":")
            pdh = self._tagged_image(f"{repo}:{tag or 'latest'}")
            if pdh is None and self.config.containers.runtime == "bubblewrap":
                return image
        if not pdh:
            raise refused
        return pdh

    def _tagged_image(self, name: str) -> str | None:
        """The newest image collection the requester can read that a trusted link names: one the
        requester can read as an object (theirs, or in a project they read), or one an admin made
        (a site's published images). Another tenant's link of the same name is not trusted, even
        to an image anyone may read: it would let them choose what others run."""
        links = self.session.execute(select(Link.uuid, Link.owner_uuid, Link.head_uuid).where(
            Link.link_class == "docker_image_repo+tag", Link.name == name).order_by(Link.created_at.desc()))
        for uuid, owner, head in links:
            trusted = self.access.perms.can(READ, uuid, owner) or self.access.is_admin(owner)
            if head and trusted and (pdh := self.access.collection_pdh(head)):
                return pdh
        return None

    def _resolve_mount(self, target: str, mount: dict[str, Any]) -> dict[str, Any]:
        """A collection mount pinned to the content (PDH) it has now, if the requester may read it.
        The same refusal whether a collection does not exist or is not theirs to read."""
        if mount["kind"] != "collection":
            return mount
        pdh, uuid = mount.get("portable_data_hash"), mount.get("uuid")
        if pdh:
            if self.access.pdh(pdh) is Verdict.HIDDEN:
                raise Unprocessable(f"mount {target}: collection {pdh} not found")
            return {k: v for k, v in mount.items() if k != "uuid"}  # as Arvados: a PDH is what is read
        if not uuid:
            return mount  # writable, without content: a new, empty collection
        if uuid[:5] != self.config.cluster_id:
            if uuid[:5] not in self.access.peers:
                raise Unprocessable(f"mount {target}: collection {uuid} is held by {uuid[:5]}, a cluster this one "
                                    "does not federate with")
            # held by a peer: the executor reads it through the federation with the requester's
            # identity (the container's token, or their home's runtime token), so the peer judges it
            return mount
        found = self.access.collection_pdh(uuid)
        if found is None:
            raise Unprocessable(f"mount {target}: collection {uuid} not found")
        return {k: v for k, v in mount.items() if k != "uuid"} | {"portable_data_hash": found}

    def _own_only(self, attrs: dict[str, Any]) -> bool:
        """May this request only join containers running as its own requester? Yes when what the
        container reads is not all judged here: a collection or image left to the federation, a keep
        mount (all of Keep, read with the runtime user's token), or API access (the runtime user's
        token in the container). Then a result depends on who runs it, and another user's container
        would hand over what its user could read and this requester perhaps cannot."""
        if attrs["runtime_constraints"].get("API"):
            return True
        wanted = [attrs["container_image"]] if attrs["container_image"] and PDH_RE.fullmatch(
            attrs["container_image"]) else []
        for mount in attrs["mounts"].values():
            if mount.get("kind") == "keep":
                return True
            if mount.get("kind") == "collection" and (mount.get("portable_data_hash") or mount.get("uuid")):
                if not mount.get("portable_data_hash"):
                    return True  # a peer's collection by UUID
                wanted.append(mount["portable_data_hash"])
        return any(self.access.pdh(pdh) is not Verdict.READABLE for pdh in wanted)

    def _reusable(self, key: str, own_only: bool) -> Container | None:
        """An equal container to share. Equal means the same inputs, which the requester was allowed
        to read when committing; a container whose inputs could not all be judged here is shared
        only with its own runtime user (own_only)."""
        candidates = [c for c in self.session.scalars(select(Container).where(Container.reuse_key == key))
                      if not own_only or c.runtime_user_uuid == self.access.user_uuid]
        readable = self.access.can_read_pdh
        finished = sorted((c for c in candidates if c.state == "Complete" and c.exit_code == 0
                           and c.output and c.log and readable(c.output) and readable(c.log)),
                          key=lambda c: c.finished_at or now())
        if finished:
            return finished[0]
        running = [c for c in candidates if c.state == "Running" and c.priority > 0
                   and not (c.runtime_status or {}).get("error")]
        if running:
            return max(running, key=lambda c: (c.progress or 0, -(c.started_at or now()).timestamp()))
        waiting = [c for c in candidates if c.state in ("Locked", "Queued")]
        return max(waiting, key=lambda c: (c.state == "Locked", c.priority), default=None)

    def _new_container(self, request: ContainerRequest, attrs: dict[str, Any], key: str) -> Container:
        stamp = now()
        constraints = attrs["runtime_constraints"]
        max_run_time = (request.scheduling_parameters or {}).get("max_run_time") or 0
        lifetime = timedelta(seconds=max_run_time) if max_run_time else DEFAULT_TOKEN_LIFETIME
        user = request.runtime_user_uuid or request.owner_uuid
        # the container's own token, for what it reads and writes here; a request from another
        # cluster also carries a runtime token from the requester's home, for what lives elsewhere
        token = ApiClientAuthorization(
            uuid=new_uuid(self.config.cluster_id, INFIX["ApiClientAuthorization"]), owner_uuid=user,
            user_uuid=user, api_token=new_secret(), scopes=["all"], expires_at=stamp + lifetime + TOKEN_MARGIN,
            created_at=stamp, modified_at=stamp, modified_by_user_uuid=user)
        self.session.add(token)
        auth_uuid = token.uuid
        container = Container(
            uuid=new_uuid(self.config.cluster_id, INFIX["Container"]), owner_uuid=self.config.system_user_uuid,
            created_at=stamp, modified_at=stamp, modified_by_user_uuid=user, state="Queued", reuse_key=key,
            auth_uuid=auth_uuid, runtime_token=request.runtime_token, runtime_user_uuid=user, runtime_status={},
            lock_count=0, priority=0,
            **{k: v for k, v in attrs.items() if k != "runtime_constraints"}, runtime_constraints=constraints)
        self.session.add(container)
        self.session.flush()
        return container

    def _source(self, container: Container, pdh: str) -> Collection | None:
        runner = self.access.for_user(container.runtime_user_uuid) if container.runtime_user_uuid else None
        if runner is None:
            return None
        for source in self.session.scalars(select(Collection).where(Collection.portable_data_hash == pdh)):
            if runner.perms.can(READ, source.uuid, source.owner_uuid):
                return source
        return None

    def check_output(self, pdh: Any) -> None:
        """What a container may claim as its output (Arvados' validate_output): content its own
        token can read, so that it cannot claim a collection its user could not read."""
        if not isinstance(pdh, str) or not PDH_RE.fullmatch(pdh):
            raise Unprocessable(f"output must be a portable data hash, not {pdh!r}"[:200])
        if not self.access.can_read_pdh(pdh):
            raise Unprocessable(f"output {pdh}: no collection you can read has this content")

    # ---------------------------------------------------------------- priority
    def request_priority(self, request: ContainerRequest) -> int:
        """What one live request contributes (Arvados: top-level requests by priority, older first;
        a child request its parent container's priority)."""
        if request.state != "Committed" or request.priority <= 0:
            return 0
        if request.requesting_container_uuid:
            parent = self.session.get(Container, request.requesting_container_uuid)
            return parent.priority if parent is not None else 0
        created_ms = int(request.created_at.timestamp() * 1000) % PRIORITY_SCALE
        return request.priority * PRIORITY_SCALE - created_ms

    def update_priority(self, container: Container) -> None:
        requests = self.session.scalars(select(ContainerRequest)
                                        .where(ContainerRequest.container_uuid == container.uuid))
        container.priority = max((self.request_priority(r) for r in requests), default=0)
        if container.priority == 0 and container.state == "Queued":
            self.container_changed(container, "Cancelled")  # nobody wants it any more

    # ---------------------------------------------------------------- containers
    def check_container_update(self, row: Container, target: str) -> None:
        if target != row.state and target not in CONTAINER_TRANSITIONS[row.state]:
            raise Unprocessable(f"a container cannot go from {row.state} to {target}")

    def container_changed(self, container: Container, state: str) -> None:
        """Apply a state change and its consequences."""
        previous = container.state
        if state == previous:
            return
        self.check_container_update(container, state)
        container.state = state
        self.state_changed(container, previous)

    def state_changed(self, container: Container, previous: str) -> None:
        """The consequences of a state change already made (from `previous`)."""
        state = container.state
        if state == previous:
            return
        stamp = now()
        if state == "Running":
            container.started_at = stamp
        if state == "Queued":
            container.locked_by_uuid = None
        if state in FINAL_CONTAINER_STATES:
            container.finished_at = stamp
            container.locked_by_uuid = None
            self._revoke_token(container)
            self._completed(container)
            # after _completed, which copies them into a retry: nothing reads them once it ends, and
            # reuse compares their md5, kept in reuse_key (as a Final request's are scrubbed)
            container.secret_mounts = {}

    def _revoke_token(self, container: Container) -> None:
        container.runtime_token = None  # the requester's home decides its life; we forget it
        token = self.session.get(ApiClientAuthorization, container.auth_uuid) if container.auth_uuid else None
        if token is not None:
            token.expires_at = now()
            Database.changed(self.session, "api_client_authorizations")  # cached callers go at once, not in 10 s

    def _completed(self, container: Container) -> None:
        requests = list(self.session.scalars(select(ContainerRequest).where(
            ContainerRequest.container_uuid == container.uuid, ContainerRequest.state == "Committed")))
        retry = [r for r in requests if container.state == "Cancelled" and r.priority > 0
                 and r.container_count < r.container_count_max]
        if retry:  # a system failure: run it again for the requests that still want it
            attrs = {k: getattr(container, k) for k in (*CONTAINER_FIELDS, "container_image", "mounts",
                                                         "secret_mounts", "runtime_constraints")}
            successor = self._new_container(retry[0], attrs, container.reuse_key)
            for request in retry:
                request.container_uuid = successor.uuid
                request.container_count += 1
            self.session.flush()
            self.update_priority(successor)
        for request in requests:
            if request not in retry:
                self._finalize(request, container)
        for child in self.session.scalars(select(ContainerRequest).where(
                ContainerRequest.requesting_container_uuid == container.uuid, ContainerRequest.state == "Committed")):
            child.priority = 0  # the parent is gone: its children are cancelled
            child_container = self.session.get(Container, child.container_uuid) if child.container_uuid else None
            if child_container is not None:
                self.update_priority(child_container)

    def _finalize(self, request: ContainerRequest, container: Container) -> None:
        """The request is done: its own output and log collections, then Final (secrets scrubbed)."""
        parent = "intermediate" if request.requesting_container_uuid else "output"
        if container.state == "Complete" and container.output:
            request.output_uuid = self._collection_for(
                request, container, container.output,
                request.output_name or f"Container output for request {request.uuid}",
                {"type": parent, "container_request": request.uuid, **(request.output_properties or {})},
                request.output_ttl)
        if container.log:
            request.log_uuid = self._collection_for(
                request, container, container.log, f"Container log for request {request.uuid}",
                {"type": "log", "container_request": request.uuid}, 0)
        request.state = "Final"
        request.secret_mounts = {}
        request.runtime_token = None
        request.modified_at = now()

    def _collection_for(self, request: ContainerRequest, container: Container, pdh: str, name: str,
                        properties: dict[str, Any], ttl: int) -> str | None:
        """The request's own copy of a container's output or log. Copied only from a collection the
        container's runtime user can read (its executor saved it as that user): a PDH that reached
        `output` some other way never turns another user's collection into the requester's."""
        source = self._source(container, pdh)
        if source is None and pdh == EMPTY_PDH:  # nothing to copy: an empty collection needs no source
            source = Collection(manifest_text="", file_count=0, file_size_total=0)
        if source is None:
            return None
        stamp = now()
        taken = self.session.scalar(select(Collection.uuid).where(
            Collection.owner_uuid == request.owner_uuid, Collection.name == name).limit(1))
        collection = Collection(
            uuid=new_uuid(self.config.cluster_id, INFIX["Collection"]), owner_uuid=request.owner_uuid,
            created_at=stamp, modified_at=stamp, modified_by_user_uuid=request.owner_uuid,
            name=f"{name} ({stamp.isoformat()})" if taken else name, properties=properties,
            portable_data_hash=pdh, manifest_text=source.manifest_text, file_count=source.file_count,
            file_size_total=source.file_size_total, trash_at=stamp + timedelta(seconds=ttl) if ttl > 0 else None)
        self.session.add(collection)
        self.session.flush()
        if rows := property_rows(collection.uuid, properties):
            self.session.execute(insert(PropertyIndex), rows)
        return collection.uuid
