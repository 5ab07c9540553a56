import pytest

from archipelago.formats.tokens import AlreadySalted, ObsoleteToken, SaltError, salt_token

TOKEN = "v2/zzzzz-gj3su-077z32aux8dg2s1/3kg6k6lzmp9kj5cpkcoxie963cmvjahbt2fod9zru30k1jqdmi"


def test_reference_vector():
    assert salt_token(TOKEN, "z1111") == "v2/zzzzz-gj3su-077z32aux8dg2s1/0e1df2e1a80942cf3a3b5bd6caeda0da52f11f02"


def test_token_for_its_own_cluster_is_unchanged():
    assert salt_token(TOKEN, "zzzzz") == TOKEN


def test_errors():
    salted = salt_token(TOKEN, "z1111")
    with pytest.raises(AlreadySalted):
        salt_token(salted, "z2222")
    with pytest.raises(ObsoleteToken):
        salt_token("3kg6k6lzmp9kj5cpkcoxie963cmvjahbt2fod9zru30k1jqdmi", "z1111")
    with pytest.raises(SaltError):
        salt_token("not a token", "z1111")
