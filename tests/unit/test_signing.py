"""The Arvados signature vectors (sdk/go/arvados/blob_signature_test.go) and the +A/+R rewriting."""

import time

import pytest

from archipelago.formats import signing
from archipelago.formats.signing import SignatureExpired, SignatureInvalid, SignatureMissing

KNOWN_HASH = "acbd18db4cc2f85cedef654fccc4a4d8"
KNOWN_LOCATOR = KNOWN_HASH + "+3"
KNOWN_TOKEN = "hocfupkn2pjhrpgp2vxv8rsku7tvtx49arbc9s4bvu7p7wxqvk"
KNOWN_KEY = (
    b"13u9fkuccnboeewr0ne3mvapk28epf68a3bhj9q8sb4l6e4e5mkk"
    b"p6nhj2mmpscgu1zze5h5enydxfe3j215024u16ij4hjaiqs5u4pzsl3nczmaoxnc"
    b"ljkm4875xqn4xv058koz3vkptmzhyheiy6wzevzjmdvxhvcqsvr5abhl15c2d4o4"
    b"jhl0s91lojy1mtrzqqvprqcverls0xvy9vai9t1l1lvvazpuadafm71jl4mrwq2y"
    b"gokee3eamvjy8qq1fvy238838enjmy5wzy2md7yvsitp5vztft6j4q866efym7e6"
    b"vu5wm9fpnwjyxfldw3vbo01mgjs75rgo7qioh8z8ij7jpyp8508okhgbbex3ceei"
    b"786u5rw2a9gx743dj3fgq2irk"
)
KNOWN_SIG_HINT = "+A89118b78732c33104a4d6231e8b5a5fa1e4301e3@7fffffff"
KNOWN_SIGNED = KNOWN_LOCATOR + KNOWN_SIG_HINT
TTL = 1209600
NOW = 0x7FFFFFFF - 10


def verify(locator, token=KNOWN_TOKEN, key=KNOWN_KEY):
    signing.verify_locator(locator, token, TTL, key, now=NOW)


def test_sign_locator_matches_arvados_vector():
    assert signing.sign_locator(KNOWN_LOCATOR, KNOWN_TOKEN, 0x7FFFFFFF, TTL, KNOWN_KEY) == KNOWN_SIGNED


@pytest.mark.parametrize(
    "locator",
    [
        KNOWN_SIGNED,
        KNOWN_LOCATOR + "+K@xyzzy" + KNOWN_SIG_HINT,
        KNOWN_SIGNED + "+Zfoo",
        KNOWN_LOCATOR + "+K@xyzzy" + KNOWN_SIG_HINT + "+Zfoo",
        KNOWN_HASH + "+999999" + KNOWN_SIG_HINT,  # the size is not signed
        KNOWN_HASH + KNOWN_SIG_HINT,
    ],
)
def test_verify_accepts(locator):
    verify(locator)


def test_verify_rejections():
    with pytest.raises(SignatureMissing):
        verify(KNOWN_LOCATOR + "+Aaaaaaaaaaaaaaaa@7fffffff")
    with pytest.raises(SignatureMissing):
        verify(KNOWN_LOCATOR)
    with pytest.raises(SignatureInvalid):
        verify(KNOWN_SIGNED, key=b"00000000000000000000")
    with pytest.raises(SignatureInvalid):
        verify(KNOWN_SIGNED, token="00000000")
    yesterday = int(time.time()) - 86400
    expired = signing.sign_locator(KNOWN_LOCATOR, KNOWN_TOKEN, yesterday, TTL, KNOWN_KEY)
    with pytest.raises(SignatureExpired):
        signing.verify_locator(expired, KNOWN_TOKEN, TTL, KNOWN_KEY)


def test_ttl_is_part_of_the_mac():
    with pytest.raises(SignatureInvalid):
        signing.verify_locator(KNOWN_SIGNED, KNOWN_TOKEN, TTL + 1, KNOWN_KEY, now=NOW)


def test_sign_and_strip_manifest():
    manifest = f". {KNOWN_LOCATOR}+K@xyzzy 0:3:foo\n./d {KNOWN_LOCATOR} 0:3:bar\n"
    signed = signing.sign_manifest(manifest, KNOWN_TOKEN, 0x7FFFFFFF, TTL, KNOWN_KEY)
    assert signed == (
        f". {KNOWN_LOCATOR}+K@xyzzy{KNOWN_SIG_HINT} 0:3:foo\n./d {KNOWN_SIGNED} 0:3:bar\n"
    )
    assert signing.strip_signatures(signed) == manifest
    resigned = signing.sign_manifest(signed, "other-token", 0x7FFFFFFF, TTL, KNOWN_KEY)
    assert resigned.count("+A") == 2 and KNOWN_SIG_HINT not in resigned


def test_local_remote_rewriting():
    manifest = f". {KNOWN_SIGNED} 0:3:foo\n"
    remote = signing.local_to_remote(manifest, "z1111")
    assert remote == f". {KNOWN_LOCATOR}+Rz1111-89118b78732c33104a4d6231e8b5a5fa1e4301e3@7fffffff 0:3:foo\n"
    assert signing.remote_to_local(remote, "z1111") == manifest
