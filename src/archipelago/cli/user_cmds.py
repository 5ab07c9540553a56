"""`archi user create` (admins)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import JsonOpt, ProfileOpt, api_client
from .errors import Typer
from .output import emit

app = Typer(help="Users (admin).", no_args_is_help=True)


@app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="E-mail address.")],
    username: Annotated[str | None, typer.Option(help="Login name.")] = None,
    admin: Annotated[bool, typer.Option(help="Make the user an admin.")] = False,
    token: Annotated[bool, typer.Option(help="Also create and print a token for the new user.")] = False,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a user (admins only)."""
    client = api_client(profile, as_json)
    user = client.users.create({"email": email, "username": username, "is_admin": admin, "is_active": True})
    if token:
        row = client.api_client_authorizations.create({"owner_uuid": user["uuid"]})
        user["token"] = f"v2/{row['uuid']}/{row['api_token']}"
    emit(user, as_json, user["uuid"] + (f"\n{user['token']}" if token else ""))
