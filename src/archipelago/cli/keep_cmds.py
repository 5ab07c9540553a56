"""`archi keepstore` (the block server) and `archi keep put|get` (blocks without an API server)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import ConfigError, load_config, parse_config
from ..formats import manifest
from ..keep.client import KeepClient
from .common import JsonOpt, ProfileOpt, api_client
from .errors import Typer
from .manifest_cmds import read_manifest
from .output import BAD_INPUT, emit, fail, transfer_progress, work_progress

app = Typer(help="Store files in Keep and read them back without an API server; move gateway-held data into Keep.",
            no_args_is_help=True)
KeepOpt = Annotated[
    list[str] | None,
    typer.Option("--keep", "-k", envvar="ARVADOS_KEEP_SERVICES", help="Keepstore URL (repeatable)."),
]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="ARVADOS_API_TOKEN", help="API token.")]


def register(root: typer.Typer) -> None:
    root.command()(keepstore)
    root.command()(gateway)
    root.add_typer(app, name="keep")


def gateway(config: Annotated[Path, typer.Option(help="Cluster configuration YAML (its `gateways`).")]) -> None:
    """Run the configuration's standalone gateways in the foreground (on another host too: they need
    the cluster's database, as `database_url` says, and their stores)."""
    import asyncio

    from ..files import owner_only
    from ..run.cluster import serve_gateways

    owner_only()  # blocks it stores for moves, like keepstore's
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(str(exc), BAD_INPUT)
    mine = [g for g in cfg.gateways if g.standalone]
    if not mine:
        fail("the configuration has no gateways marked `standalone: true` (the others run in `cluster up`)",
             BAD_INPUT)
    from ..run.control import Port, check_ports

    check_ports([Port(f"gateway {g.uuid}", "gateways[].listen", g.host, g.port) for g in mine], config)
    asyncio.run(serve_gateways(cfg, on_ready=lambda: print(
        "\n".join(f"gateway {g.uuid} ({g.service_type}) listening on http://{g.listen}" for g in mine),
        flush=True)))


def keepstore(
    config: Annotated[Path | None, typer.Option(help="Cluster configuration YAML.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Serve one directory volume (no config file needed).")] = None,
    listen: Annotated[str | None, typer.Option(help="host:port to listen on.")] = None,
    cluster_id: Annotated[str, typer.Option(help="Cluster ID with --data-dir.")] = "zzzzz",
    token: Annotated[str | None, typer.Option("--token", envvar="ARVADOS_API_TOKEN",
                                              help="With --data-dir: the one token that may store blocks.")] = None,
) -> None:
    """Run a keepstore server in the foreground. With --config it serves that cluster: blocks are
    stored for tokens the cluster's API accepts. With --data-dir it serves no cluster: only --token."""
    from ..files import owner_only
    from ..keepstore.app import serve
    from ..keepstore.tokens import no_cluster

    owner_only()  # the blocks and the remote block cache it writes: tenants' data
    try:
        if config is not None:
            cfg = load_config(config)
        elif data_dir is not None:
            if not token:
                fail("--data-dir needs --token (or ARVADOS_API_TOKEN): the token that may store blocks here", BAD_INPUT)
            cfg = parse_config({"cluster_id": cluster_id, "system_root_token": token,
                                "volumes": [{"driver": "directory", "root": str(data_dir)}]})
        else:
            fail("give --config FILE or --data-dir DIR", BAD_INPUT)
        if listen:
            cfg.keepstore = cfg.keepstore.model_validate({**cfg.keepstore.model_dump(), "listen": listen})
    except (ConfigError, ValueError) as exc:
        fail(str(exc), BAD_INPUT)
    if not cfg.volumes:
        fail("the configuration has no volumes", BAD_INPUT)
    from ..run.control import Port, check_ports

    check_ports([Port("the keepstore", "--listen" if config is None else "keepstore.listen", cfg.keepstore.host,
                      cfg.keepstore.port)], config or Path("the command line"))
    serve(cfg, on_ready=lambda url: print(f"keepstore listening on {url}", flush=True),
          authenticate=no_cluster if config is None else None)


def _client(keep: list[str] | None, token: str | None, as_json: bool, **kwargs: Any) -> KeepClient:
    urls = [u for item in keep or [] for u in item.split()]
    if not urls:
        fail("no keep services: pass --keep URL or set ARVADOS_KEEP_SERVICES", BAD_INPUT, as_json)
    return KeepClient.from_urls(urls, token, **kwargs)


@app.command("move")
def keep_move(
    collection: Annotated[str, typer.Argument(help="Collection UUID (or PDH) whose gateway-held blocks to move.")],
    to: Annotated[str, typer.Option("--to", help="Where to: keep (this cluster's own storage) or a gateway's "
                                                 "UUID (its store: a directory or a bucket).")] = "keep",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy a collection's blocks into Keep or into a gateway's store, then repoint its manifest (its
    PDH does not change; readers are not interrupted)."""
    from ..sdk.gateway import move

    client = api_client(profile, as_json)
    with work_progress("moving", not as_json) as progress:
        record = move(client, collection, to, progress)
    emit({"uuid": record["uuid"], "portable_data_hash": record["portable_data_hash"], "blocks": record["blocks"],
          "bytes": record["bytes"]}, as_json,
         f"{record['blocks']} blocks ({record['bytes']} bytes) of {record['uuid']} moved to {to}; "
         f"PDH {record['portable_data_hash']}")


@app.command("put")
def keep_put(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to store.")],
    keep: KeepOpt = None,
    token: TokenOpt = None,
    replicas: Annotated[int, typer.Option(min=1, help="Copies to store.")] = 1,
    manifest_out: Annotated[Path | None, typer.Option(help="Also write the manifest to this file.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Store files as packed blocks; print the manifest and its portable data hash."""
    from ..keep.transfer import plan_upload, upload

    client = _client(keep, token, as_json, replicas=replicas)
    try:
        plan = plan_upload(paths)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc), BAD_INPUT, as_json)
    try:
        with transfer_progress("uploading", plan.total_bytes, not as_json) as advance:
            text = upload(client, plan, advance)
    except OSError as exc:
        fail(str(exc), as_json=as_json)
    if manifest_out:
        manifest_out.write_text(text)
    pdh = manifest.portable_data_hash(text)
    emit({"portable_data_hash": pdh, "manifest_text": text, "files": len(plan.files), "bytes": plan.total_bytes},
         as_json, f"{text}{pdh}")


@app.command("get")
def keep_get(
    manifest_file: Annotated[str, typer.Argument(help="Manifest file (or -), as printed by `archi keep put`.")],
    dest: Annotated[Path, typer.Argument(help="Directory to write the files into.")],
    keep: KeepOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download every file of a manifest, verifying each block."""
    from ..keep.transfer import download

    parsed = read_manifest(manifest_file, as_json)
    client = _client(keep, token, as_json, cache=None)
    total = sum(s[2] for files in parsed.tree().values() for segs in files.values() for s in segs)
    try:
        with transfer_progress("downloading", total, not as_json) as advance:
            written = download(client, parsed.text, dest, advance)
    except OSError as exc:
        fail(str(exc), as_json=as_json)
    emit({"bytes": written, "dest": str(dest)}, as_json, f"{written} bytes written to {dest}")
