"""`archi token create|list|revoke`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from .common import JsonOpt, ProfileOpt, api_client
from .errors import Typer
from .output import emit

app = Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)


@app.command("create")
def token_create(
    expires_in: Annotated[int | None, typer.Option(min=1, help="Lifetime in seconds (default: no expiry).")] = None,
    scope: Annotated[list[str] | None, typer.Option(help="Scope like 'GET /arvados/v1/collections' "
                                                         "(repeatable; default all).")] = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a new API token for yourself; prints it in v2 form."""
    attrs: dict[str, Any] = {"scopes": scope or ["all"]}
    if expires_in is not None:
        attrs["expires_at"] = (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat()
    row = api_client(profile, as_json).api_client_authorizations.create(attrs)
    token = f"v2/{row['uuid']}/{row['api_token']}"
    emit({**row, "token": token}, as_json, token)


@app.command("list")
def token_list(profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """List your tokens (not their secrets)."""
    result = api_client(profile, as_json).api_client_authorizations.list(limit=1000)
    for item in result["items"]:
        item.pop("api_token", None)
    emit(result, as_json, "\n".join(f"{t['uuid']}  expires {t.get('expires_at') or 'never'}  {t.get('scopes')}"
                                    for t in result["items"]))


@app.command("revoke")
def token_revoke(uuid: str, profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke a token: it stops working at once."""
    api_client(profile, as_json).api_client_authorizations.delete(uuid)
    emit({"revoked": uuid}, as_json, f"revoked {uuid}")
