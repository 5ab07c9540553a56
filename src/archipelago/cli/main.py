"""`archi`: the command line."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from .. import __version__
from ..config import ConfigError, load_config, parse_config
from ..keep import manifest
from ..keep.client import KeepClient
from ..keep.errors import KeepError
from ..keep.locator import LocatorError
from . import api_cmds
from .output import BAD_INPUT, emit, fail, transfer_progress

app = typer.Typer(help="Archipelago: federated data and analysis.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
manifest_app = typer.Typer(help="Validate, normalize and hash manifests (like arv-normalize).", no_args_is_help=True)
keep_app = typer.Typer(help="Store files in Keep and read them back, without an API server.", no_args_is_help=True)
cluster_app = typer.Typer(help="Create and run a cluster.", no_args_is_help=True)
federation_app = typer.Typer(help="Run a local federation of clusters.", no_args_is_help=True)
app.add_typer(manifest_app, name="manifest")
app.add_typer(cluster_app, name="cluster")
app.add_typer(federation_app, name="federation")
api_cmds.register(app)
app.add_typer(keep_app, name="keep")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ManifestFile = Annotated[str, typer.Argument(help="Manifest file, or - for standard input.")]
KeepOpt = Annotated[
    list[str] | None,
    typer.Option("--keep", "-k", envvar="ARVADOS_KEEP_SERVICES", help="Keepstore URL (repeatable)."),
]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="ARVADOS_API_TOKEN", help="API token.")]


@app.command()
def version(as_json: JsonOpt = False) -> None:
    """Print the version."""
    emit({"version": __version__}, as_json, f"archipelago {__version__}")


# ------------------------------------------------------------------ manifest
def _read_manifest(source: str, as_json: bool) -> manifest.Manifest:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror}", BAD_INPUT, as_json)
    except UnicodeDecodeError:
        fail(f"{source} is not UTF-8 text", BAD_INPUT, as_json)
    try:
        parsed = manifest.parse(text)
        parsed.tree()  # segment bounds
        return parsed
    except manifest.ManifestError as exc:
        fail(f"invalid manifest {source}: {exc}", BAD_INPUT, as_json)


@manifest_app.command("validate")
def manifest_validate(source: ManifestFile = "-", as_json: JsonOpt = False) -> None:
    """Exit 0 if the manifest is valid; otherwise name the line and token at fault (exit 2)."""
    parsed = _read_manifest(source, as_json)
    files = sum(len(f) for f in parsed.tree().values())
    emit({"valid": True, "streams": len(parsed.streams), "files": files}, as_json,
         f"valid: {len(parsed.streams)} streams, {files} files")


@manifest_app.command("normalize")
def manifest_normalize(source: ManifestFile = "-", as_json: JsonOpt = False) -> None:
    """Print the normalized manifest (sorted streams and files, merged segments)."""
    text = _read_manifest(source, as_json).normalized()
    if as_json:
        emit({"manifest_text": text, "portable_data_hash": manifest.portable_data_hash(text)}, True)
    else:
        sys.stdout.write(text)


@manifest_app.command("pdh")
def manifest_pdh(source: ManifestFile = "-", as_json: JsonOpt = False) -> None:
    """Print the portable data hash of the manifest as given (hints stripped, not re-normalized)."""
    pdh = _read_manifest(source, as_json).portable_data_hash()
    emit({"portable_data_hash": pdh}, as_json, pdh)


# ------------------------------------------------------------------ keepstore
@app.command()
def keepstore(
    config: Annotated[Path | None, typer.Option(help="Cluster configuration YAML.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Serve one directory volume (no config file needed).")] = None,
    listen: Annotated[str | None, typer.Option(help="host:port to listen on.")] = None,
    cluster_id: Annotated[str, typer.Option(help="Cluster ID with --data-dir.")] = "zzzzz",
) -> None:
    """Run a keepstore server in the foreground."""
    from ..keep.server import serve

    try:
        if config is not None:
            cfg = load_config(config)
        elif data_dir is not None:
            cfg = parse_config({"cluster_id": cluster_id, "volumes": [{"driver": "directory", "root": str(data_dir)}]})
        else:
            fail("give --config FILE or --data-dir DIR", BAD_INPUT)
        if listen:
            cfg.keepstore = cfg.keepstore.model_validate({**cfg.keepstore.model_dump(), "listen": listen})
    except (ConfigError, ValueError) as exc:
        fail(str(exc), BAD_INPUT)
    if not cfg.volumes:
        fail("the configuration has no volumes", BAD_INPUT)
    serve(cfg, on_ready=lambda url: print(f"keepstore listening on {url}", flush=True))


# ------------------------------------------------------------------ cluster
@cluster_app.command("init")
def cluster_init(
    directory: Annotated[Path, typer.Argument(help="Directory for the configuration and data.")],
    cluster_id: Annotated[str, typer.Option(help="5 characters from [a-z0-9].")] = "zzzzz",
    database_url: Annotated[str | None, typer.Option(help="Default: an SQLite file in DIRECTORY.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a working cluster configuration with fresh secrets, and an admin token."""
    from ..cluster import init_cluster

    try:
        result = init_cluster(directory, cluster_id, database_url)
    except (ConfigError, FileExistsError) as exc:
        fail(str(exc), BAD_INPUT, as_json)
    emit({"config": str(result.config_path), "cluster_id": cluster_id, "api_url": result.config.api.url,
          "admin_token": result.admin_token}, as_json,
         f"wrote {result.config_path}\nAPI     {result.config.api.url}\nadmin token  {result.admin_token}")


@cluster_app.command("up")
def cluster_up(directory: Annotated[Path, typer.Argument(help="A directory made by `archi cluster init`.")]) -> None:
    """Run the cluster's API server and keepstore in this process until interrupted."""
    import asyncio

    from ..cluster import CONFIG_NAME, load_cluster, serve_cluster

    try:
        config, token = load_cluster(directory)
    except ConfigError as exc:
        fail(str(exc), BAD_INPUT)

    async def run() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(serve_cluster(config, Path(directory) / CONFIG_NAME, ready))
        await ready.wait()
        print(f"cluster {config.cluster_id} up\nAPI        {config.api.url}\nkeepstore  "
              f"http://{config.keepstore.listen}\nadmin token {token}", flush=True)
        await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@app.command()
def api(
    config: Annotated[Path, typer.Option(help="Cluster configuration YAML.")],
    worker: Annotated[bool, typer.Option(hidden=True, help="An extra API process of `cluster up`.")] = False,
) -> None:
    """Run the API server alone, in the foreground."""
    from ..cluster import serve_api

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(str(exc), BAD_INPUT)
    print(f"API server listening on {cfg.api.url}", flush=True)
    serve_api(cfg, prepare=not worker)  # the first process has migrated the database


@federation_app.command("up")
def federation_up(
    directory: Annotated[Path, typer.Argument(help="Directory for the clusters (created if needed).")],
    clusters: Annotated[int, typer.Option(min=1, max=9, help="How many clusters.")] = 3,
    login_cluster: Annotated[bool, typer.Option(help="The first cluster issues all users and tokens.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Boot a federation of N clusters on loopback (one process each) until interrupted."""
    import time

    from ..boot import ClusterProcess
    from ..cluster import CONFIG_NAME, load_cluster
    from ..federation.boot import cluster_ids, init_federation

    directory = directory.resolve()
    if not all((directory / cid / CONFIG_NAME).exists() for cid in cluster_ids(clusters)):
        init_federation(directory, clusters, login_cluster)
    processes = [ClusterProcess(directory / cid) for cid in cluster_ids(clusters)]
    try:
        for process in processes:
            process.start()
        info = [{"cluster_id": p.config.cluster_id, "api_url": p.api_url, "keepstore_url": p.keep_url,
                 "admin_token": load_cluster(p.directory)[1]} for p in processes]
        emit(info, as_json, "\n".join(f"{i['cluster_id']}  {i['api_url']}  admin token {i['admin_token']}"
                                      for i in info))
        sys.stdout.flush()
        while all(p.process and p.process.poll() is None for p in processes):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            process.stop()


# ------------------------------------------------------------------ keep put/get
def _client(keep: list[str] | None, token: str | None, as_json: bool, **kwargs) -> KeepClient:
    urls = [u for item in keep or [] for u in item.split()]
    if not urls:
        fail("no keep services: pass --keep URL or set ARVADOS_KEEP_SERVICES", BAD_INPUT, as_json)
    return KeepClient.from_urls(urls, token, **kwargs)


@keep_app.command("put")
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
    except (KeepError, OSError) as exc:
        fail(str(exc), as_json=as_json)
    if manifest_out:
        manifest_out.write_text(text)
    pdh = manifest.portable_data_hash(text)
    emit({"portable_data_hash": pdh, "manifest_text": text, "files": len(plan.files), "bytes": plan.total_bytes},
         as_json, f"{text}{pdh}")


@keep_app.command("get")
def keep_get(
    manifest_file: Annotated[str, typer.Argument(help="Manifest file (or -), as printed by `archi keep put`.")],
    dest: Annotated[Path, typer.Argument(help="Directory to write the files into.")],
    keep: KeepOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download every file of a manifest, verifying each block."""
    from ..keep.transfer import download

    parsed = _read_manifest(manifest_file, as_json)
    client = _client(keep, token, as_json, cache=None)
    total = sum(s[2] for files in parsed.tree().values() for segs in files.values() for s in segs)
    try:
        with transfer_progress("downloading", total, not as_json) as advance:
            written = download(client, parsed.text, dest, advance)
    except (KeepError, LocatorError, OSError) as exc:
        fail(str(exc), as_json=as_json)
    emit({"bytes": written, "dest": str(dest)}, as_json, f"{written} bytes written to {dest}")


# ------------------------------------------------------------------ demo
@app.command()
def demo(
    source: Annotated[Path | None, typer.Option(help="Directory to store (default: a generated one).")] = None,
    federated: Annotated[bool, typer.Option(help="Three clusters and the federated scenario.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Boot a federation on loopback: a directory into a collection and back, then private cohorts
    that stay home, a panel read across clusters, a copy, and the bytes that crossed."""
    from ..demo import run_demo

    with tempfile.TemporaryDirectory(prefix="archi-demo-") as scratch:
        report = run_demo(Path(scratch), source, federated)
    emit(report.as_dict(), as_json, report.text())
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry point
    app()
