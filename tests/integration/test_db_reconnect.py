"""The API's PostgreSQL pool outlives its server's connections (a restart, an administrator ending
backends): a connection idle for a while is pinged before use and replaced if dead; one that died
while busy costs at most the request that found it, and the whole pool is renewed after it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from archipelago.db.session import IDLE_PING_SECONDS, make_engine

pytestmark = pytest.mark.integration


@pytest.fixture
def database(postgres_server: Any, request: pytest.FixtureRequest) -> str:
    return str(postgres_server.create_database(f"reconnect_{abs(hash(request.node.nodeid))}"))


def end_every_connection_to(database_url: str) -> int:
    """What a server restart does to a pool: every backend of the database ended."""
    admin = make_engine(database_url)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        ended = connection.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    admin.dispose()
    return int(ended or 0)


def one(engine: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT 1")).scalar())


def test_a_connection_idle_when_its_server_dropped_it_is_replaced_before_use(database):
    engine = make_engine(database)
    assert one(engine) == 1
    assert end_every_connection_to(database) >= 1
    time.sleep(IDLE_PING_SECONDS + 0.2)  # idle: the next checkout pings it
    assert one(engine) == 1
    engine.dispose()


def test_a_connection_that_died_in_use_costs_one_request_and_the_pool_is_renewed(database):
    engine = make_engine(database)
    with engine.connect() as a, engine.connect() as b:  # two pooled connections, just used
        a.execute(text("SELECT 1"))
        b.execute(text("SELECT 1"))
    assert end_every_connection_to(database) >= 2
    failures = 0
    for _ in range(3):
        try:
            assert one(engine) == 1
        except OperationalError:
            failures += 1
    assert failures <= 1
    assert one(engine) == 1
    engine.dispose()
