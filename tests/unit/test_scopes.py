from archipelago.api.app import scope_allows


def test_all_and_exact_and_prefix_scopes():
    assert scope_allows(("all",), "DELETE", "/arvados/v1/collections/x")
    read_collections = ("GET /arvados/v1/collections/",)
    assert scope_allows(read_collections, "GET", "/arvados/v1/collections/z1111-4zz18-000000000000000")
    assert not scope_allows(read_collections, "PUT", "/arvados/v1/collections/z1111-4zz18-000000000000000")
    assert not scope_allows(read_collections, "GET", "/arvados/v1/groups")
    exact = ("GET /arvados/v1/users/current",)
    assert scope_allows(exact, "GET", "/arvados/v1/users/current")
    assert not scope_allows(exact, "GET", "/arvados/v1/users/current/x")


def test_own_token_record_is_always_readable():
    assert scope_allows((), "GET", "/arvados/v1/api_client_authorizations/current")
