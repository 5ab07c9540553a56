import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archipelago.formats.locator import Locator, LocatorError

HASH = "acbd18db4cc2f85cedef654fccc4a4d8"


def test_parse_plain_and_hinted():
    loc = Locator.parse(f"{HASH}+3+K@xyzzy+Zfoo")
    assert (loc.md5, loc.size, loc.hints) == (HASH, 3, ("K@xyzzy", "Zfoo"))
    assert str(loc) == f"{HASH}+3+K@xyzzy+Zfoo"
    assert loc.stripped == f"{HASH}+3"
    assert loc.service_hints == ["xyzzy"]


def test_signature_hints():
    sig = "89118b78732c33104a4d6231e8b5a5fa1e4301e3"
    loc = Locator.parse(f"{HASH}+3+A{sig}@7fffffff")
    assert loc.signature is not None and loc.signature.expiry == 0x7FFFFFFF and loc.signature.signature == sig
    remote = Locator.parse(f"{HASH}+3+Rz1111-{sig}@7fffffff")
    assert remote.signature is None
    assert remote.remote_signature is not None and remote.remote_signature.cluster_id == "z1111"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (HASH, "size must follow"),  # no size
        (f"{HASH}+Z+0", "size must follow"),  # hint before size
        (f"{HASH}+0+0", "size must come first"),
        (f"{HASH}+0+z", "uppercase letter"),  # lowercase hint
        (f"{HASH}+0+Z*", "uppercase letter"),
        (f"{HASH}+0++Z", "empty hint"),
        (f"{HASH}+0+", "empty hint"),
        (HASH.upper() + "+0", "32 lowercase hex"),
        ("abc+3", "32 lowercase hex"),
        (f"{HASH}+{(1 << 26) + 1}", "64 MiB"),
    ],
)
def test_invalid_locators_say_why(text, reason):
    with pytest.raises(LocatorError, match=reason):
        Locator.parse(text)


def test_size_optional_when_asked():
    assert Locator.parse(HASH, require_size=False).size is None


hints = st.from_regex(r"[A-Z][A-Za-z0-9@_-]{0,12}", fullmatch=True)


@settings(deadline=None)
@given(
    md5=st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    size=st.integers(0, 1 << 26),
    extra=st.lists(hints, max_size=4),
)
def test_parse_format_round_trip(md5, size, extra):
    text = "+".join([md5, str(size), *extra])
    assert str(Locator.parse(text)) == text


def test_with_service_names_another_holder_and_keeps_the_signature() -> None:
    from archipelago.formats.locator import Locator

    signed = "acbd18db4cc2f85cedef654fccc4a4d8+3+K@z1111-bi6l4-gateway00000001+A" + "ab" * 20 + "@5f0e1a2b"
    loc = Locator.parse(signed)
    assert str(loc.with_service(None)) == "acbd18db4cc2f85cedef654fccc4a4d8+3+A" + "ab" * 20 + "@5f0e1a2b"
    moved = loc.with_service("z1111-bi6l4-gateway00000002")
    assert moved.service_hints == ["z1111-bi6l4-gateway00000002"] and moved.signature == loc.signature
