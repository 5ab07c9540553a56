"""The discovery document googleapiclient (and so the Arvados Python SDK) builds its client from,
and the exported (public) part of the configuration."""

from __future__ import annotations

from typing import Any

from ..config import ClusterConfig
from ..resources.base import Resource
from ..resources.registry import RESOURCE_TYPES

REVISION = "20250402"
_TYPES = {"str": "string", "int": "integer", "bool": "boolean", "datetime": "datetime", "dict": "object",
          "list": "array"}


def _param(kind: str, location: str, required: bool = False, description: str = "") -> dict[str, Any]:
    return {"type": kind, "location": location, "required": required, "description": description}


LIST_PARAMS = {
    "filters": _param("array", "query"),
    "where": _param("object", "query"),
    "order": _param("array", "query"),
    "select": _param("array", "query"),
    "distinct": _param("boolean", "query"),
    "limit": {**_param("integer", "query"), "default": "100"},
    "offset": {**_param("integer", "query"), "default": "0"},
    "count": {**_param("string", "query"), "default": "exact"},
    "cluster_id": _param("string", "query"),
    "bypass_federation": _param("boolean", "query"),
    "include_trash": _param("boolean", "query"),
    "include_old_versions": _param("boolean", "query"),
}


def _schema(resource: type[Resource]) -> dict[str, Any]:
    model = resource.model
    properties = {}
    for column in model.__table__.columns:
        python = getattr(column.type, "python_type", str)
        properties[column.key] = {"type": _TYPES.get(python.__name__, "string")}
    # uuidPrefix: the type infix; clients (arv-copy) tell an object's type from its UUID with it
    return {"id": resource.class_name, "type": "object", "uuidPrefix": resource.infix,
            "properties": properties}


def _methods(kind: type[Resource]) -> dict[str, Any]:
    resource, name = kind.name, kind.class_name
    singular = kind.body_key
    uuid = {"uuid": _param("string", "path", True)}
    body = {"request": {"required": True, "properties": {singular: {"$ref": name}}}, "response": {"$ref": name}}
    methods: dict[str, dict[str, Any]] = {
        "get": {"path": f"{resource}/{{uuid}}", "httpMethod": "GET",
                "parameters": {**uuid, "select": _param("array", "query"),
                               **({"include_trash": _param("boolean", "query")} if kind.trashable else {})},
                "response": {"$ref": name}},
        "list": {"path": resource, "httpMethod": "GET", "parameters": LIST_PARAMS,
                 "response": {"$ref": f"{name}List"}},
        "create": {"path": resource, "httpMethod": "POST", **body,
                   "parameters": {"select": _param("array", "query"),
                                  "ensure_unique_name": {**_param("boolean", "query"), "default": "false"},
                                  "cluster_id": _param("string", "query")}},
        # cluster_id on update: the official CWL runner sends it when it commits a request
        "update": {"path": f"{resource}/{{uuid}}", "httpMethod": "PUT", **body,
                   "parameters": {**uuid, "select": _param("array", "query"), "cluster_id": _param("string", "query")}},
        "delete": {"path": f"{resource}/{{uuid}}", "httpMethod": "DELETE", "parameters": uuid,
                   "response": {"$ref": name}},
    }
    for listing in {"contents", "shared"} & set(kind.actions):  # groups.contents, groups.shared
        methods[listing] = {"path": f"{resource}/{listing}", "httpMethod": "GET",
                            "parameters": {**LIST_PARAMS, **({"uuid": _param("string", "query")}
                                                             if listing == "contents" else {})},
                            "response": {"$ref": f"{name}List"}}
    if "current" in kind.actions:
        methods["current"] = {"path": f"{resource}/current", "httpMethod": "GET", "parameters": {},
                              "response": {"$ref": name}}
    if kind.trashable:
        for verb in ("trash", "untrash"):
            methods[verb] = {"path": f"{resource}/{{uuid}}/{verb}", "httpMethod": "POST", "parameters": uuid,
                             "response": {"$ref": name}}
    for action, http_method in kind.object_actions.items():
        methods[action] = {"path": f"{resource}/{{uuid}}/{action}", "httpMethod": http_method, "parameters": uuid,
                           "response": {"$ref": name}}
    for method, spec in methods.items():
        spec["id"] = f"arvados.{resource}.{method}"
        spec["scopes"] = ["https://api.arvados.org/auth/arvados"]
    return methods


def discovery_document(config: ClusterConfig, root_url: str) -> dict[str, Any]:
    root = root_url.rstrip("/") + "/"
    schemas: dict[str, Any] = {}
    resources: dict[str, Any] = {}
    for kind in RESOURCE_TYPES:
        resource, name = kind.name, kind.class_name
        schemas[name] = _schema(kind)
        schemas[f"{name}List"] = {"id": f"{name}List", "type": "object", "properties": {
            "items": {"type": "array", "items": {"$ref": name}}, "items_available": {"type": "integer"}}}
        resources[resource] = {"methods": _methods(kind)}
    schemas["KeepService"] = {"id": "KeepService", "type": "object", "properties": {}}
    schemas["KeepServiceList"] = {"id": "KeepServiceList", "type": "object", "properties": {}}
    resources["keep_services"] = {"methods": {
        "accessible": {"id": "arvados.keep_services.accessible", "path": "keep_services/accessible",
                       "httpMethod": "GET", "parameters": {}, "response": {"$ref": "KeepServiceList"}},
        "list": {"id": "arvados.keep_services.list", "path": "keep_services", "httpMethod": "GET",
                 "parameters": LIST_PARAMS, "response": {"$ref": "KeepServiceList"}},
    }}
    schemas["Config"] = {"id": "Config", "type": "object", "properties": {}}
    resources["configs"] = {"methods": {"get": {"id": "arvados.configs.get", "path": "config", "httpMethod": "GET",
                                                "parameters": {}, "response": {"$ref": "Config"}}}}
    return {
        "kind": "discovery#restDescription", "discoveryVersion": "v1", "id": "arvados:v1", "name": "arvados",
        "version": "v1", "revision": REVISION, "source_version": "archipelago", "sourceVersion": "archipelago",
        "packageVersion": "archipelago", "title": "Arvados API (Archipelago)", "description": "",
        "documentationLink": "", "protocol": "rest", "rootUrl": root, "baseUrl": f"{root}arvados/v1/",
        "basePath": "/arvados/v1/", "servicePath": "arvados/v1/", "batchPath": "batch",
        "uuidPrefix": config.cluster_id,
        "defaultCollectionReplication": config.collections.default_replication,
        "defaultTrashLifetime": config.collections.blob_trash_lifetime,
        "blobSignatureTtl": config.collections.blob_signing_ttl,
        "maxRequestSize": 128 << 20, "maxItemsPerResponse": config.api.max_items_per_response,
        "dockerImageFormats": ["v2"], "crunchLogUpdatePeriod": 1800, "crunchLogUpdateSize": 33554432,
        "remoteHosts": {cid: remote.host for cid, remote in config.remote_clusters.items()},
        "remoteHostsViaDNS": False, "websocketUrl": "", "workbenchUrl": "",
        "workbench2Url": config.api.web_url, "keepWebServiceUrl": "",
        "parameters": {"alt": {"type": "string", "location": "query", "default": "json"},
                       "fields": {"type": "string", "location": "query"},
                       "key": {"type": "string", "location": "query"},
                       "oauth_token": {"type": "string", "location": "query"}},
        "auth": {"oauth2": {"scopes": {"https://api.arvados.org/auth/arvados": {"description": "all"}}}},
        "schemas": schemas, "resources": resources,
    }


def exported_config(config: ClusterConfig) -> dict[str, Any]:
    """The public configuration (`/arvados/v1/config`): no secrets."""
    return {
        "ClusterID": config.cluster_id,
        "StorageClasses": {name: {"Default": c.default, "Priority": c.priority}
                           for name, c in config.storage_classes.items()},
        "Collections": {
            "BlobSigning": config.collections.blob_signing,
            "BlobSigningTTL": f"{config.collections.blob_signing_ttl}s",
            "DefaultReplication": config.collections.default_replication,
            "DefaultTrashLifetime": f"{config.collections.blob_trash_lifetime}s",
            "CollectionVersioning": False,
        },
        "RemoteClusters": {cid: {"Host": r.host, "Scheme": r.scheme, "Insecure": r.insecure, "Proxy": True}
                           for cid, r in config.remote_clusters.items()},
        "Login": {"LoginCluster": config.login.login_cluster or ""},
        "Services": {"Controller": {"ExternalURL": config.api.url},
                     "Workbench1": {"ExternalURL": ""}, "Workbench2": {"ExternalURL": config.api.web_url},
                     "Keepstore": {"InternalURLs": {url: {} for url in config.keep_service_urls}}},
        "API": {"MaxItemsPerResponse": config.api.max_items_per_response, "MaxRequestSize": 128 << 20},
        "Containers": {"DefaultKeepCacheRAM": 268435456, "RuntimeEngine": config.containers.runtime},
        "Users": {"AnonymousUserToken": ""},
        "Resolvers": list(config.resolver.urls),  # ours: the dataset resolvers clients ask, in turn
    }
