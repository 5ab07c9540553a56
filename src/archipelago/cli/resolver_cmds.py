"""`archi resolver` (the resolver service and its sites), `archi resolve ID`, and `archi id add|rm|ls`
(the identifiers a collection or project carries)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import ConfigError
from ..errors import ArchipelagoError, Unavailable
from .common import JsonOpt, ProfileOpt, api_client
from .errors import Typer
from .output import BAD_INPUT, emit, fail

resolver_app = Typer(help="The dataset resolver: run one, and see its sites.", invoke_without_command=True)
id_app = Typer(help="Identifiers (DOI, ARK, URN, URL, compact id, drs://, keep:) of collections and projects.",
               no_args_is_help=True)
ResolverOpt = Annotated[list[str] | None, typer.Option("--resolver", help="Resolver URL to ask (repeatable); "
                                                       "default: $ARCHI_RESOLVER_URLS, else the home cluster's")]


def register(root: typer.Typer) -> None:
    root.add_typer(resolver_app, name="resolver")
    root.add_typer(id_app, name="id")
    root.command()(resolve)


@resolver_app.callback()
def resolver(ctx: typer.Context,
             config: Annotated[Path | None, typer.Option(help="Resolver configuration YAML.")] = None) -> None:
    """Run the resolver in the foreground (`archi resolver --config FILE`)."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        fail("give --config FILE to run a resolver, or a command: archi resolver sites", BAD_INPUT)
    from ..files import owner_only
    from ..resolver.config import load_resolver_config
    from ..resolver.server import run_resolver

    owner_only()  # its database holds what sites registered
    try:
        cfg = load_resolver_config(config)
    except ConfigError as exc:
        fail(str(exc), BAD_INPUT)
    run_resolver(cfg, lambda: print(f"resolver listening on http://{cfg.listen} "
                                     f"({len(cfg.sites)} sites)", flush=True))


def _ago(stamp: float | None) -> str:
    return "never" if stamp is None else f"{max(0.0, time.time() - stamp):.0f} s ago"


@resolver_app.command("sites")
def resolver_sites(resolvers: ResolverOpt = None, profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """The resolver's sites: mode (push, poll, both), windows, liveness and when each was last seen."""
    from ..resolver.client import ResolverClient
    from ..resolver.lookup import resolver_urls

    urls = resolver_urls(None, resolvers) or resolver_urls(api_client(profile, as_json))
    if not urls:
        fail("no resolver to ask: give --resolver URL or set ARCHI_RESOLVER_URLS", BAD_INPUT, as_json)
    client = ResolverClient(urls)
    answer = client.sites()
    if answer is None:
        raise Unavailable("no resolver answered: " + "; ".join(client.errors))
    sites = answer.data["sites"]
    lines = [f"resolver {answer.url}", f"{'site':6} {'mode':5} {'liveness':8} {'last seen':>12} {'by':5} "
             f"{'live/stale/drop (s)':>20} {'poll (s)':>8}  why"]
    for s in sites:
        windows = f"{s['live_window']:.0f}/{s['stale_window']:.0f}/{s['drop_after']:.0f}"
        poll = f"{s['poll_interval']:.0f}" if s["poll_interval"] else "-"
        lines.append(f"{s['site']:6} {s['mode']:5} {s['liveness']:8} {_ago(s['last_seen']):>12} "
                     f"{s['seen_by'] or '-':5} {windows:>20} {poll:>8}  {s['why']}")
    emit({"resolver": answer.url, "sites": sites}, as_json, "\n".join(lines))


def human_resolution(data: dict[str, Any]) -> str:
    source = (f"resolver {data['resolver']}" + (f" and home cluster {data['home']}" if data["home"] else "")
              if data["resolver"] else
              f"home cluster {data['home']} alone: no resolver answered ({'; '.join(data['resolver_errors'])})")
    lines = [f"identifier  {data['identifier']} ({data['scheme']})", f"answered by {source}"]
    if not data["holders"]:
        lines.append("held by     no site known")
    if data["all_down"]:
        lines.append("every site holding it is DOWN (last seen below)")
    for h in data["holders"]:
        size = f"{h['size'] / 1e6:.1f} MB" if isinstance(h.get("size"), int) else "-"
        lines.append(f"  {h['site']}  {h['liveness']:<7} last seen {_ago(h.get('last_seen'))} "
                     f"({h.get('seen_by') or '-'})  {h['kind']} {h['uuid']}  {h.get('pdh') or ''}  {size}  "
                     f"residency {h.get('residency') or 'none'}")
        for name, route in sorted((h.get("routes") or {}).items()):
            lines.append(f"        {name:15} {route}")
    return "\n".join(lines)


def resolve(identifier: Annotated[str, typer.Argument(help="DOI, ARK, URN, URL, prefix:accession, drs://, keep:")],
            resolvers: ResolverOpt = None, profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Every site that holds an identifier, live ones first: liveness, collection, PDH, size, residency
    and the routes to it. Works against the home cluster alone when no resolver answers, and says so."""
    from ..resolver.identifiers import parse_identifier
    from ..resolver.lookup import resolve as lookup
    from ..resolver.lookup import resolver_urls

    try:
        parse_identifier(identifier)
    except ArchipelagoError as exc:
        fail(str(exc), BAD_INPUT, as_json)
    home = None
    try:
        from ..sdk.client import ApiClient

        home = ApiClient.from_env(profile)
    except ArchipelagoError:
        home = None  # no home cluster configured: the resolvers alone
    result = lookup(identifier, home, resolver_urls(home, resolvers)).as_dict()
    emit(result, as_json, human_resolution(result))


# ---------------------------------------------------------------- archi id
@id_app.command("add")
def id_add(identifier: Annotated[str, typer.Argument(help="The identifier, in any spelling.")],
           target: Annotated[str, typer.Argument(help="The collection or project (UUID) that carries it.")],
           publish: Annotated[bool, typer.Option(help="Tell the federation's resolvers (anyone may then resolve "
                                                      "it to this object, its PDH and size).")] = False,
           profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Give a collection or project an identifier (stored in its normal form)."""
    record = api_client(profile, as_json).request("POST", "identifiers", body={"identifier": {
        "head_uuid": target, "identifier": identifier, "published": publish}})
    emit(record, as_json, f"{record['identifier']} -> {record['head_uuid']}"
                          f"{' (published)' if record['published'] else ' (this cluster only)'}  {record['uuid']}")


def _find(client: Any, identifier: str | None, target: str | None) -> list[dict[str, Any]]:
    from ..resolver.identifiers import parse_identifier

    filters: list[list[Any]] = []
    if identifier:
        filters.append(["identifier", "=", parse_identifier(identifier).text])
    if target:
        filters.append(["head_uuid", "=", target])
    return client.request("GET", "identifiers", {"filters": json.dumps(filters), "limit": 1000,
                                                 "order": '["identifier asc"]'})["items"]


@id_app.command("rm")
def id_rm(identifier: Annotated[str, typer.Argument(help="The identifier, in any spelling.")],
          target: Annotated[str | None, typer.Argument(help="Only from this collection or project.")] = None,
          profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Remove an identifier (from every object here you may change, or from TARGET)."""
    client = api_client(profile, as_json)
    found = _find(client, identifier, target)
    if not found:
        fail(f"no object you can read here carries {identifier}" + (f" ({target})" if target else ""), 1, as_json)
    removed = [client.request("DELETE", f"identifiers/{row['uuid']}") for row in found]
    emit(removed, as_json, "\n".join(f"removed {r['identifier']} from {r['head_uuid']}" for r in removed))


@id_app.command("ls")
def id_ls(target: Annotated[str | None, typer.Argument(help="A collection or project; default: all you can read.")]
          = None, identifier: Annotated[str | None, typer.Option("--id", help="Only this identifier.")] = None,
          profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Identifiers of the collections and projects you can read here."""
    found = _find(api_client(profile, as_json), identifier, target)
    emit(found, as_json, "\n".join(f"{r['identifier']:50} {r['head_uuid']}  {'published' if r['published'] else '-'}"
                                   for r in found) or "no identifiers")
