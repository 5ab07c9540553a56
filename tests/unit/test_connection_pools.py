"""HTTP clients are built in two modules only: the API client (rpc.py: Urllib3Transport and its
asynchronous face, async_session) and the keep client (keep/http.py: KeepConnections), so every
block transfer, keep admin call and API call has the timeouts, TLS settings and typed failures of
one of them (issue 22). Every other module asks one of those two.

Not counted: boto3 clients (keepstore's S3 volume, a gateway's S3 store) build their own pools
inside botocore — they speak S3 with its signing and retries, which neither of our clients does."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "src" / "archipelago"
BUILDERS = {"rpc.py", "keep/http.py"}
# calls that build a connection pool, or send through a library's hidden global one
POOL_CALLS = {
    "urllib3.PoolManager", "urllib3.ProxyManager", "urllib3.HTTPConnectionPool", "urllib3.HTTPSConnectionPool",
    "urllib3.connection_from_url", "urllib3.request",
    "urllib3.poolmanager.PoolManager", "urllib3.connectionpool.HTTPConnectionPool",
    "aiohttp.ClientSession", "aiohttp.request",
    "httpx.Client", "httpx.AsyncClient", "httpx.get", "httpx.post", "httpx.request",
    "requests.Session", "requests.get", "requests.post", "requests.put", "requests.request",
    "urllib.request.urlopen", "http.client.HTTPConnection", "http.client.HTTPSConnection",
}


def qualified_calls(tree: ast.AST) -> set[str]:
    """Each call's function as a dotted name, with names imported `from x import y` resolved."""
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.update({alias.asname or alias.name: f"{node.module}.{alias.name}" for alias in node.names})
        elif isinstance(node, ast.Import):
            imported.update({alias.asname: alias.name for alias in node.names if alias.asname})

    def dotted(expr: ast.expr) -> str | None:
        if isinstance(expr, ast.Name):
            return imported.get(expr.id, expr.id)
        if isinstance(expr, ast.Attribute) and (base := dotted(expr.value)) is not None:
            return f"{base}.{expr.attr}"
        return None

    return {name for node in ast.walk(tree) if isinstance(node, ast.Call) and (name := dotted(node.func))}


def pool_builders() -> dict[str, set[str]]:
    found = {}
    for path in ROOT.rglob("*.py"):
        calls = qualified_calls(ast.parse(path.read_text())) & POOL_CALLS
        if calls:
            found[path.relative_to(ROOT).as_posix()] = calls
    return found


def test_only_the_api_client_and_the_keep_client_build_http_pools():
    assert {module for module in pool_builders() if module not in BUILDERS} == set(), pool_builders()


def test_the_check_sees_each_way_of_building_one():
    source = """
import urllib3, aiohttp
from urllib3 import PoolManager as P
from httpx import Client
urllib3.request("GET", "http://x")
P()
Client()
aiohttp.ClientSession()
"""
    assert qualified_calls(ast.parse(source)) & POOL_CALLS == {
        "urllib3.request", "urllib3.PoolManager", "httpx.Client", "aiohttp.ClientSession"}
