"""`archi login`, `put`, `get`, `ls`, `copy`: data in and out of a cluster, and between clusters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from ..rpc import ApiRequestError
from ..sdk.client import ApiClient
from ..sdk.profiles import Profile, save_profile
from .common import JsonOpt, ProfileOpt, api_client, split_target
from .output import BAD_INPUT, FAILED, emit, fail, transfer_progress, work_progress


def register(app: typer.Typer) -> None:
    for command in (login, put, get, ls, copy):
        app.command()(command)
    app.command("register")(register_data)


def login(
    host: Annotated[str, typer.Option(help="API host: https://host:port or host:port.")],
    token: Annotated[str, typer.Option(help="API token.", prompt=True, hide_input=True)],
    insecure: Annotated[bool, typer.Option(help="Accept a self-signed certificate.")] = False,
    profile: Annotated[str, typer.Option(help="Profile name.")] = "default",
    as_json: JsonOpt = False,
) -> None:
    """Check a host and token, then save them as a profile."""
    user = ApiClient(host, token, insecure).users.current()
    path = save_profile(profile, Profile(host, token, insecure))
    emit({"profile": profile, "user": user["uuid"], "saved": str(path)}, as_json,
         f"logged in as {user.get('username') or user['uuid']} ({user['uuid']}); profile {profile!r} saved")


def put(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to upload.")],
    name: Annotated[str | None, typer.Option(help="Collection name (default: the first path's name).")] = None,
    project: Annotated[str | None, typer.Option(help="Project UUID to save into.")] = None,
    replicas: Annotated[int | None, typer.Option(min=1, help="Copies of each block.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted upload of the same paths.")] = True,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload files into a new collection (progress bar, resumable); prints its UUID and PDH."""
    from ..keep.transfer import plan_upload
    from ..sdk.transfer import put_paths

    try:
        plan = plan_upload(paths)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc), BAD_INPUT, as_json)
    client = api_client(profile, as_json)
    started = time.perf_counter()
    try:
        with transfer_progress("uploading", plan.total_bytes, not as_json) as advance:
            record = put_paths(client, paths, name, project, replicas, advance, plan, resume)
    except OSError as exc:
        fail(str(exc), FAILED, as_json)
    seconds = time.perf_counter() - started
    emit({"uuid": record["uuid"], "portable_data_hash": record["portable_data_hash"], "name": record["name"],
          "files": len(plan.files), "bytes": plan.total_bytes, "seconds": round(seconds, 3)}, as_json,
         f"{record['uuid']}\n{record['portable_data_hash']}")


def register_data(
    path: Annotated[str, typer.Argument(help="Where the data is (s3://bucket/prefix, https://host/path, "
                                              "/mnt/dir/...) or a path below the gateway `--gateway` names.")],
    gateway: Annotated[str | None, typer.Option(help="The gateway's UUID (needed when there are several).")] = None,
    name: Annotated[str | None, typer.Option(help="Collection name (default: the path).")] = None,
    project: Annotated[str | None, typer.Option(help="Project UUID to save into.")] = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a collection of data a gateway serves in place (nothing is copied into Keep): each file is
    read once to map its blocks; prints the collection's UUID and PDH."""
    from ..sdk.gateway import register

    started = time.perf_counter()
    with work_progress("registering (the gateway reads each object once)", not as_json) as advance:
        record = register(api_client(profile, as_json), path, gateway, name, project, advance)
    emit({"uuid": record["uuid"], "portable_data_hash": record["portable_data_hash"], "name": record["name"],
          "objects": record["objects"], "bytes": record["bytes"], "seconds": round(time.perf_counter() - started, 3)},
         as_json, f"{record['uuid']}\n{record['portable_data_hash']}")


def get(
    target: Annotated[str, typer.Argument(help="COLLECTION (UUID or PDH), optionally /path inside it.")],
    dest: Annotated[Path, typer.Argument(help="Destination directory.")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite files that already exist in DEST.")] = False,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a collection (or part of it); every block is verified against its md5. Files already
    in DEST are not overwritten without -f, except a file of whole blocks whose md5s it already
    matches (a large file downloaded before: a re-run goes on with the rest). Small files share
    blocks and cannot be checked that way: re-running into the same DEST needs -f."""
    from ..keep.transfer import would_overwrite
    from ..sdk.transfer import collection_size, get_collection

    ident, subpath = split_target(target)
    subpath = subpath.strip("/")
    client = api_client(profile, as_json)
    started = time.perf_counter()
    record = _part(client, ident, subpath, as_json) if subpath else client.collections.get(ident)
    if not force and (existing := would_overwrite(record["manifest_text"], dest, subpath)):
        more = f" (and {len(existing) - 1} more of its files)" if len(existing) > 1 else ""
        fail(f"{existing[0]} already exists{more}; -f/--force overwrites", BAD_INPUT, as_json)
    try:
        with transfer_progress("downloading", collection_size(record, subpath), not as_json) as advance:
            written = get_collection(client, record, dest, subpath, advance)
    except FileNotFoundError as exc:
        fail(str(exc), BAD_INPUT, as_json)
    except OSError as exc:
        fail(str(exc), FAILED, as_json)
    seconds = time.perf_counter() - started
    emit({"uuid": record["uuid"], "bytes": written, "dest": str(dest), "seconds": round(seconds, 3)}, as_json,
         f"{written} bytes from {record['uuid']} written to {dest}")


def ls(
    target: Annotated[str, typer.Argument(help="COLLECTION (UUID or PDH), optionally /path inside it.")],
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List a collection's files with their sizes."""
    from ..sdk.files import collection_files

    ident, subpath = split_target(target)
    subpath = subpath.strip("/")
    client = api_client(profile, as_json)
    with _missing_path(ident, subpath, as_json):
        files = [(item["path"], item["size"]) for item in collection_files(client, ident, subpath, recursive=True)
                 if item["type"] == "file"]
    if subpath and not files:
        fail(f"{subpath} is not in {ident}", BAD_INPUT, as_json)
    emit([{"path": p, "size": s} for p, s in files], as_json, "\n".join(f"{s:>14} {p}" for p, s in files))


@contextmanager
def _missing_path(ident: str, subpath: str, as_json: bool) -> Iterator[None]:
    """A path the collection does not hold is the user's mistake (exit 2), said as before."""
    try:
        yield
    except ApiRequestError as exc:
        if exc.status == 404 and subpath and "in this collection" in exc.message:
            fail(f"{subpath} is not in {ident}", BAD_INPUT, as_json)
        raise


def _part(client: ApiClient, ident: str, subpath: str, as_json: bool) -> dict[str, Any]:
    """What `get` reads of a collection for a path in it: a manifest of that part alone, asked of
    the API by path (a collection of a million files is never fetched whole for one of them)."""
    from ..sdk.files import subtree_manifest

    with _missing_path(ident, subpath, as_json):
        return {"uuid": ident, "manifest_text": subtree_manifest(client, ident, subpath)}


def copy(
    source: Annotated[str, typer.Argument(help="Collection (UUID or PDH), project or workflow UUID.")],
    cluster: Annotated[str, typer.Argument(help="Destination cluster ID.")],
    project: Annotated[str | None, typer.Option(help="Project UUID at the destination (default: your home).")] = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy a collection, a workflow with its dependencies, or a project with everything in it to
    another cluster. What the destination already has for you (same PDH, same blocks) is not sent."""
    from ..sdk.copy import FederationCopy

    client = api_client(profile, as_json)
    run = FederationCopy(client, cluster)
    total = run.size(source)
    try:
        with transfer_progress(f"copying to {cluster}", total, not as_json) as advance:
            run.progress = advance
            report = run.copy(source, project)
    except OSError as exc:
        fail(str(exc), FAILED, as_json)
    made = sum(o.created for o in report.objects)
    emit(report.as_dict(), as_json,
         f"{report.top.uuid}: {made} of {len(report.objects)} object(s) created, "
         f"{report.blocks_sent} block(s) / {report.bytes_sent} bytes sent, {report.blocks_reused} block(s) reused")
