"""`archi` commands that talk to a cluster's API: login, put/get/ls, collections, projects, tokens, users."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from ..keep.errors import KeepError
from ..sdk.client import ApiClient, ApiRequestError
from ..sdk.profiles import Profile, save_profile
from .output import BAD_INPUT, FAILED, emit, fail, transfer_progress

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ProfileOpt = Annotated[str | None, typer.Option("--profile", help="Saved profile to use (see `archi login`).")]

collection_app = typer.Typer(help="Collections: show, list, share.", no_args_is_help=True)
project_app = typer.Typer(help="Projects: create, list.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)
user_app = typer.Typer(help="Users (admin).", no_args_is_help=True)
LEVELS = {"read": "can_read", "write": "can_write", "manage": "can_manage"}


def _api_failed(exc: ApiRequestError, as_json: bool) -> NoReturn:
    fail(exc.message if exc.status else str(exc), BAD_INPUT if exc.status in (400, 422) else FAILED, as_json)


def _client(profile: str | None, as_json: bool) -> ApiClient:
    try:
        return ApiClient.from_env(profile)
    except ApiRequestError as exc:
        fail(exc.message, BAD_INPUT, as_json)


def _split_target(target: str) -> tuple[str, str]:
    head, _, rest = target.partition("/")
    return head, rest


def register(app: typer.Typer) -> None:
    app.add_typer(collection_app, name="collection")
    app.add_typer(project_app, name="project")
    app.add_typer(token_app, name="token")
    app.add_typer(user_app, name="user")
    app.command()(login)
    app.command()(put)
    app.command()(get)
    app.command()(ls)
    app.command()(copy)


def login(
    host: Annotated[str, typer.Option(help="API host: https://host:port or host:port.")],
    token: Annotated[str, typer.Option(help="API token.", prompt=True, hide_input=True)],
    insecure: Annotated[bool, typer.Option(help="Accept a self-signed certificate.")] = False,
    profile: Annotated[str, typer.Option(help="Profile name.")] = "default",
    as_json: JsonOpt = False,
) -> None:
    """Check a host and token, then save them as a profile."""
    client = ApiClient(host, token, insecure)
    try:
        user = client.users.current()
    except ApiRequestError as exc:
        _api_failed(exc, as_json)
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
    client = _client(profile, as_json)
    started = time.perf_counter()
    try:
        with transfer_progress("uploading", plan.total_bytes, not as_json) as advance:
            record = put_paths(client, paths, name, project, replicas, advance, plan, resume)
    except ApiRequestError as exc:
        _api_failed(exc, as_json)
    except (KeepError, OSError) as exc:
        fail(str(exc), FAILED, as_json)
    seconds = time.perf_counter() - started
    emit({"uuid": record["uuid"], "portable_data_hash": record["portable_data_hash"], "name": record["name"],
          "files": len(plan.files), "bytes": plan.total_bytes, "seconds": round(seconds, 3)}, as_json,
         f"{record['uuid']}\n{record['portable_data_hash']}")


def get(
    target: Annotated[str, typer.Argument(help="COLLECTION (UUID or PDH), optionally /path inside it.")],
    dest: Annotated[Path, typer.Argument(help="Destination directory.")],
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a collection (or part of it); every block is verified against its md5."""
    from ..sdk.transfer import collection_size, get_collection

    ident, subpath = _split_target(target)
    client = _client(profile, as_json)
    started = time.perf_counter()
    try:
        record = client.collections.get(ident)
        with transfer_progress("downloading", collection_size(record, subpath), not as_json) as advance:
            written = get_collection(client, record, dest, subpath, advance)
    except ApiRequestError as exc:
        _api_failed(exc, as_json)
    except FileNotFoundError as exc:
        fail(str(exc), BAD_INPUT, as_json)
    except (KeepError, OSError) as exc:
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
    from ..sdk.collection import Collection

    ident, subpath = _split_target(target)
    client = _client(profile, as_json)
    try:
        files = [(path, size) for path, size in Collection(client, ident).files()
                 if not subpath or path == subpath or path.startswith(subpath.rstrip("/") + "/")]
    except ApiRequestError as exc:
        _api_failed(exc, as_json)
    if subpath and not files:
        fail(f"{subpath} is not in {ident}", BAD_INPUT, as_json)
    emit([{"path": p, "size": s} for p, s in files], as_json, "\n".join(f"{s:>14} {p}" for p, s in files))


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

    client = _client(profile, as_json)
    try:
        run = FederationCopy(client, cluster)
        total = run.size(source)
        with transfer_progress(f"copying to {cluster}", total, not as_json) as advance:
            run.progress = advance
            report = run.copy(source, project)
    except ApiRequestError as exc:
        _api_failed(exc, as_json)
    except (KeepError, OSError) as exc:
        fail(str(exc), FAILED, as_json)
    made = sum(o.created for o in report.objects)
    emit(report.as_dict(), as_json,
         f"{report.top.uuid}: {made} of {len(report.objects)} object(s) created, "
         f"{report.blocks_sent} block(s) / {report.bytes_sent} bytes sent, {report.blocks_reused} block(s) reused")


# ------------------------------------------------------------------ collections
@collection_app.command("show")
def collection_show(uuid: str, profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Show one collection's record."""
    try:
        record = _client(profile, as_json).collections.get(uuid)
    except ApiRequestError as exc:
        _api_failed(exc, as_json)
    fields = ("uuid", "name", "owner_uuid", "portable_data_hash", "file_count", "file_size_total", "modified_at")
    emit(record, as_json, "\n".join(f"{k:18} {record.get(k)}" for k in fields))


@collection_app.command("list")
def collection_list(
    project: Annotated[str | None, typer.Option(help="Only this project's collections.")] = None,
    name: Annotated[str | None, typer.Option(help="Name pattern (SQL LIKE, e.g. 'run-%').")] = None,
    limit: int = 100,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List readable collections, newest first."""
    filters: list[list[Any]] = []
    if project:
        filters.append(["owner_uuid", "=", project])
    if name:
        filters.append(["name", "like", name])
    try:
        result = _client(profile, as_json).collections.list(filters, limit=limit)
    except ApiRequestError as exc:
        _api_failed(exc, as_json)
    emit(result, as_json, "\n".join(f"{c['uuid']}  {c['portable_data_hash']:>44}  {c['name']}"
                                    for c in result["items"]))


@collection_app.command("share")
def collection_share(
    uuid: str,
    with_user: Annotated[str, typer.Option("--with", help="User (or role group) UUID to share with.")],
    level: Annotated[str, typer.Option(help="read, write or manage.")] = "read",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Share a collection or project with a user: a permission link."""
    if level not in LEVELS:
        fail("--level must be read, write or manage", BAD_INPUT, as_json)
    try:
        link = _client(profile, as_json).links.create(
            {"link_class": "permission", "name": LEVELS[level], "tail_uuid": with_user, "head_uuid": uuid})
    except ApiRequestError as exc:
        _api_failed(exc, as_json)
    emit(link, as_json, f"{link['uuid']}: {with_user} {LEVELS[level]} {uuid}")


# ------------------------------------------------------------------ projects
@project_app.command("create")
def project_create(
    name: str,
    parent: Annotated[str | None, typer.Option(help="Parent project UUID.")] = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a project (optionally inside another)."""
    attrs: dict[str, Any] = {"name": name, "group_class": "project"}
    if parent:
        attrs["owner_uuid"] = parent
    try:
        group = _client(profile, as_json).groups.create(attrs)
    except ApiRequestError as exc:
        _api_failed(exc, as_json)
    emit(group, as_json, group["uuid"])


@project_app.command("list")
def project_list(profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """List readable projects."""
    try:
        result = _client(profile, as_json).groups.list([["group_class", "=", "project"]], limit=1000)
    except ApiRequestError as exc:
        _api_failed(exc, as_json)
    emit(result, as_json, "\n".join(f"{g['uuid']}  {g['name']}" for g in result["items"]))


# ------------------------------------------------------------------ tokens
@token_app.command("create")
def token_create(
    expires_in: Annotated[int | None, typer.Option(help="Lifetime in seconds.")] = None,
    scope: Annotated[list[str] | None, typer.Option(help="Scope like 'GET /arvados/v1/collections' "
                                                         "(repeatable; default all).")] = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a new API token for yourself; prints it in v2 form."""
    attrs: dict[str, Any] = {"scopes": scope or ["all"]}
    if expires_in:
        attrs["expires_at"] = (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat()
    try:
        row = _client(profile, as_json).api_client_authorizations.create(attrs)
    except ApiRequestError as exc:
        _api_failed(exc, as_json)
    token = f"v2/{row['uuid']}/{row['api_token']}"
    emit({**row, "token": token}, as_json, token)


@token_app.command("list")
def token_list(profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """List your tokens (not their secrets)."""
    try:
        result = _client(profile, as_json).api_client_authorizations.list(limit=1000)
    except ApiRequestError as exc:
        _api_failed(exc, as_json)
    for item in result["items"]:
        item.pop("api_token", None)
    emit(result, as_json, "\n".join(f"{t['uuid']}  expires {t.get('expires_at') or 'never'}  {t.get('scopes')}"
                                    for t in result["items"]))


@token_app.command("revoke")
def token_revoke(uuid: str, profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke a token: it stops working at once."""
    try:
        _client(profile, as_json).api_client_authorizations.delete(uuid)
    except ApiRequestError as exc:
        _api_failed(exc, as_json)
    emit({"revoked": uuid}, as_json, f"revoked {uuid}")


# ------------------------------------------------------------------ users
@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="E-mail address.")],
    username: Annotated[str | None, typer.Option(help="Login name.")] = None,
    admin: Annotated[bool, typer.Option(help="Make the user an admin.")] = False,
    token: Annotated[bool, typer.Option(help="Also create and print a token for the new user.")] = False,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a user (admins only)."""
    client = _client(profile, as_json)
    try:
        user = client.users.create({"email": email, "username": username, "is_admin": admin, "is_active": True})
        if token:
            row = client.api_client_authorizations.create({"owner_uuid": user["uuid"]})
            user["token"] = f"v2/{row['uuid']}/{row['api_token']}"
    except ApiRequestError as exc:
        _api_failed(exc, as_json)
    emit(user, as_json, user["uuid"] + (f"\n{user['token']}" if token else ""))
