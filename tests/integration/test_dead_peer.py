"""A federation member dies: requests naming it fail clearly and quickly, local work goes on.
Its own federation, since it kills a member."""

from __future__ import annotations

import time

import pytest

from archipelago.sdk import ApiRequestError
from tests.support.clusters import new_user, running_federation

pytestmark = pytest.mark.integration


@pytest.fixture
def federation(tmp_path):
    with running_federation(tmp_path, 3) as federation:
        yield federation


def test_a_dead_cluster_gives_a_clear_error_in_bounded_time(federation):
    home = federation["z1111"]
    alice = new_user(home, "alice")
    local = alice.collections.create({"name": "still fine", "manifest_text": ""})["uuid"]
    federation["processes"]["z3333"].process.kill()
    federation["processes"]["z3333"].process.wait()
    started = time.monotonic()
    with pytest.raises(ApiRequestError) as info:
        alice.collections.get("z3333-4zz18-000000000000000")
    assert info.value.status == 502 and "z3333" in info.value.message and "unreachable" in info.value.message
    with pytest.raises(ApiRequestError) as info:  # PDH broadcast: z2222 answers, z3333 is named as unreachable
        alice.collections.get("0123456789abcdef0123456789abcdef+7")
    assert info.value.status == 404 and "z3333" in info.value.message
    assert time.monotonic() - started < 30
    assert alice.collections.get(local)["uuid"] == local  # local work is unaffected
