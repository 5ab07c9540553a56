"""run/ports.py: loopback ports handed out from the slice a process was given."""

from __future__ import annotations

import pytest

from archipelago.run import ports


def test_ports_come_from_the_slice_the_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHI_SERVICE_PORTS", "21000-21049")
    assert ports.service_ports() == range(21000, 21050)
    assert all(21000 <= ports.free_port() <= 21049 for _ in range(20))


@pytest.mark.parametrize("value", ["", "21000", "abc-def", "22000-21000", "-5-10"])
def test_a_missing_or_malformed_slice_is_the_whole_range(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ARCHI_SERVICE_PORTS", value)
    assert ports.service_ports() == ports.SERVICE_PORTS


def test_an_xdist_worker_has_a_slice_of_its_own() -> None:
    """What tests/conftest.py gives each xdist worker (slices side by side, one per worker)."""
    import os

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        pytest.skip("not under xdist: the whole range is this process's")
    assert os.environ["ARCHI_SERVICE_PORTS"]
    mine = ports.service_ports()
    assert len(mine) < len(ports.SERVICE_PORTS) and ports.SERVICE_PORTS.start <= mine.start
