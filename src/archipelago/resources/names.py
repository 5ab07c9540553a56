"""The names of the API's resources and how the wire spells them; no database here, so the HTTP
layer and the federation router can use them."""

from __future__ import annotations

from functools import cache

# resource (URL path segment) -> model class name, which gives its kind and its UUID type infix
CLASS_NAMES: dict[str, str] = {
    "users": "User",
    "api_client_authorizations": "ApiClientAuthorization",
    "groups": "Group",
    "links": "Link",
    "collections": "Collection",
    "workflows": "Workflow",
    "container_requests": "ContainerRequest",
    "containers": "Container",
    "identifiers": "Identifier",
}


@cache
def kind(resource: str) -> str:
    """The Arvados kind of a resource: `arvados#apiClientAuthorization` for api_client_authorizations."""
    name = CLASS_NAMES[resource]
    return f"arvados#{name[0].lower()}{name[1:]}"


def body_key(resource: str) -> str:
    """The key a create/update body wraps its attributes in (`collection` for collections)."""
    return resource[:-1]

# in a federation with a LoginCluster, only that cluster creates these
ISSUED_BY_LOGIN_CLUSTER = ("users", "api_client_authorizations")
# resources whose work runs as the requester: made on another cluster, they carry a runtime token
# from the requester's home (limited in time and scope; see federation/router.py)
RUNS_AS_REQUESTER = frozenset({"container_requests"})
# what a runtime token may do: read collections and the caller's identity, save outputs and logs
RUNTIME_TOKEN_SCOPES = ["GET /arvados/v1/collections/", "GET /arvados/v1/collections",
                        "POST /arvados/v1/collections", "POST /arvados/v1/collections/",
                        "GET /arvados/v1/users/current", "GET /arvados/v1/keep_services/accessible"]
RUNTIME_TOKEN_MARGIN_SECONDS = 3600
DEFAULT_RUN_SECONDS = 86400

# resources whose objects can be asked for by content (PDH) as well as by UUID
CONTENT_ADDRESSED = frozenset({"collections"})
