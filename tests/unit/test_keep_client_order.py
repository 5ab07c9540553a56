from archipelago.formats.locator import Locator
from archipelago.keep.rendezvous import rendezvous_order
from archipelago.keep.services import KeepService, read_order, write_order

MD5 = "acbd18db4cc2f85cedef654fccc4a4d8"
DISKS = [KeepService(f"zzzzz-bi6l4-{n:015d}", f"http://127.0.0.1:{9000 + n}") for n in range(4)]
GATEWAY = KeepService("zzzzz-bi6l4-gatewaygateway1", "http://127.0.0.1:9100", service_type="gateway:s3")
READ_ONLY = KeepService("zzzzz-bi6l4-readonlyreadonly", "http://127.0.0.1:9200", read_only=True)


def test_plain_reads_follow_rendezvous_and_skip_gateways():
    assert read_order(Locator.parse(f"{MD5}+3"), [*DISKS, GATEWAY]) == rendezvous_order(MD5, DISKS, lambda s: s.uuid)


def test_k_hint_sends_the_read_to_the_named_service_first():
    order = read_order(Locator.parse(f"{MD5}+3+K@{GATEWAY.uuid}"), [*DISKS, GATEWAY])
    assert order[0] == GATEWAY and sorted(s.uuid for s in order[1:]) == sorted(s.uuid for s in DISKS)


def test_writes_go_to_writable_keepstores_in_rendezvous_order():
    assert write_order(MD5, [*DISKS, GATEWAY, READ_ONLY]) == rendezvous_order(MD5, DISKS, lambda s: s.uuid)
