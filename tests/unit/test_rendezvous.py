"""Probe order must be bit-exact with Arvados clients (sdk/go/keepclient/root_sorter_test.go)."""

import hashlib

from archipelago.keep.rendezvous import rendezvous_order, service_weight

SERVICES = [f"zzzzz-bi6l4-{i:015x}" for i in range(16)]


def test_reference_set():
    expected = ["3eab2d5fc9681074", "097dba52e648f1c3", "c5b4e023f8a7d691", "9d81c02e76a3bf54"]
    for h, order in enumerate(expected):
        block = hashlib.md5(f"{h:064x}".encode()).hexdigest()
        got = rendezvous_order(block, SERVICES)
        assert got == [SERVICES[int(c, 16)] for c in order]


def test_weight_uses_the_last_15_characters():
    block = "acbd18db4cc2f85cedef654fccc4a4d8"
    assert service_weight(block, "zzzzz-bi6l4-000000000000001") == service_weight(block, "xxxxx-bi6l4-000000000000001")
    assert service_weight(block, "zzzzz-bi6l4-000000000000001") == hashlib.md5(
        (block + "000000000000001").encode()
    ).hexdigest()
