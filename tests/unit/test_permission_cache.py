"""Permission snapshots: reused until a local write invalidates them, and at most max_age old
when another process (here: a write without invalidate) changes who may see what."""

from datetime import UTC, datetime
from types import SimpleNamespace

from archipelago.auth import permissions
from archipelago.auth.permissions import READ, PermissionCache
from archipelago.db.models import Group, Link
from archipelago.db.session import make_engine, migrate, session_factory

ALICE, BOB = "z1111-tpzed-00000000000alice", "z1111-tpzed-0000000000000bob"


def test_snapshots_expire_and_invalidate(tmp_path, monkeypatch):
    now = [1000.0]  # the cache's clock, moved by the test (never by how long a step took)
    monkeypatch.setattr(permissions, "time", SimpleNamespace(monotonic=lambda: now[0]))
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    sessions = session_factory(engine)
    stamp = datetime.now(UTC)
    project = "z1111-j7d0g-000000000project"
    with sessions() as session, session.begin():
        session.add(Group(uuid=project, owner_uuid=ALICE, created_at=stamp, modified_at=stamp, name="p",
                          group_class="project", properties={}, is_trashed=False))
    cache = PermissionCache(max_age=0.3)
    with sessions() as session:
        assert not cache.get(session, BOB, False).can(READ, project, ALICE)
    with sessions() as session, session.begin():  # shared by "another process": no invalidate()
        session.add(Link(uuid="z1111-o0j2j-0000000000share", owner_uuid=ALICE, created_at=stamp,
                         modified_at=stamp, link_class="permission", name="can_read", tail_uuid=BOB,
                         head_uuid=project, properties={}))
    now[0] += 0.2
    with sessions() as session:
        assert not cache.get(session, BOB, False).can(READ, project, ALICE)  # still the cached snapshot
    now[0] += 0.15
    with sessions() as session:
        assert cache.get(session, BOB, False).can(READ, project, ALICE)  # expired: recomputed
    with sessions() as session, session.begin():
        session.query(Link).delete()
    cache.invalidate()  # what this process does after its own writes commit
    with sessions() as session:
        assert not cache.get(session, BOB, False).can(READ, project, ALICE)


def test_each_operation_gets_the_snapshot_bound_to_its_own_session(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    sessions = session_factory(engine)
    cache = PermissionCache(max_age=60)
    with sessions() as first, sessions() as second:
        cache.get(first, BOB, False)  # computed and cached
        a, b = cache.get(first, BOB, False), cache.get(second, BOB, False)  # both from the cache
        assert a.session is first and b.session is second  # one thread's rebind never moves another's
        assert a is not b and a.readable_owners() == b.readable_owners()
