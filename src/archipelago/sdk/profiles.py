"""Where the CLI and SDK find a cluster: environment first, then the saved profile."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..files import write_private


@dataclass
class Profile:
    host: str
    token: str
    insecure: bool = False


def profiles_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "archipelago" / "profiles.json"


def load_profiles() -> dict[str, Profile]:
    path = profiles_path()
    if not path.exists():
        return {}
    return {name: Profile(**data) for name, data in json.loads(path.read_text()).items()}


def save_profile(name: str, profile: Profile) -> Path:
    path = profiles_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    profiles = load_profiles()
    profiles[name] = profile
    write_private(path, json.dumps({n: asdict(p) for n, p in profiles.items()}, indent=2))
    return path


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def resolve(profile: str | None = None) -> Profile | None:
    """ARCHI_API_HOST/TOKEN, else ARVADOS_API_HOST/TOKEN, else the named (or 'default') profile."""
    if profile is None:
        for prefix in ("ARCHI", "ARVADOS"):
            host, token = os.environ.get(f"{prefix}_API_HOST"), os.environ.get(f"{prefix}_API_TOKEN")
            if host and token:
                return Profile(host, token, _flag(os.environ.get(f"{prefix}_API_HOST_INSECURE")))
    return load_profiles().get(profile or os.environ.get("ARCHI_PROFILE", "default"))
