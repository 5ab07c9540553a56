"""A resolver's configuration: one YAML file, validated before anything starts (`archi resolver
--config FILE`). The sites it knows, each with its key, its API URL, how its liveness is learnt
(push, poll or both) and its windows.

```yaml
listen: 127.0.0.1:25200
database_url: sqlite:///resolver.db      # or postgresql://…
poll_concurrency: 64                     # polls in flight at once (one asyncio loop, no thread per site)
poll_timeout: 5
max_concurrent_pushes: 32                # more at once get 503 and retry with jittered backoff
memory_index: true                       # answers from memory (index.py), loaded from the database at start
defaults: {mode: both, live_window: 30, stale_window: 120, drop_after: 86400, poll_interval: 10}
sites:
  z1111: {url: https://127.0.0.1:29143, key: <secret>, insecure: true}
  z2222: {url: https://127.0.0.1:22957, key: <secret>, mode: poll}
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..config import ConfigError
from ..ids import CLUSTER_ID_RE
from .liveness import Windows


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WindowSettings(_Strict):
    mode: Literal["push", "poll", "both"] | None = None
    live_window: float | None = Field(default=None, gt=0, description="seconds since a push or poll: live")
    stale_window: float | None = Field(default=None, gt=0, description="then stale; down after")
    drop_after: float | None = Field(default=None, gt=0, description="then left out of answers")
    poll_interval: float | None = Field(default=None, gt=0, description="seconds between polls of the site")


class SiteConfig(WindowSettings):
    url: str = Field(description="the site's API URL: polls, and the routes answers give")
    key: str = Field(min_length=16, description="the secret the site signs its pushes with (and we our polls)")
    insecure: bool = Field(default=False, description="accept the site's self-signed certificate")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected http(s)://host:port")
        return value.rstrip("/")


class ResolverConfig(_Strict):
    listen: str = "127.0.0.1:25200"
    database_url: str = "sqlite:///resolver.db"
    poll_concurrency: int = Field(default=64, ge=1)
    poll_timeout: float = Field(default=5.0, gt=0)
    max_concurrent_pushes: int = Field(default=32, ge=1)
    clock_skew: float = Field(default=300.0, gt=0, description="seconds a signed request's time may be off")
    memory_index: bool = Field(default=True, description="answer from an index in memory (about 0.7 GB per "
                                                         "million registrations), loaded at start")
    defaults: WindowSettings = WindowSettings()
    sites: dict[str, SiteConfig] = {}

    @field_validator("sites")
    @classmethod
    def _site_ids(cls, value: dict[str, SiteConfig]) -> dict[str, SiteConfig]:
        for site in value:
            if not CLUSTER_ID_RE.fullmatch(site):
                raise ValueError(f"{site!r} is not a cluster ID (5 characters from [a-z0-9])")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def windows(self, site: str) -> Windows:
        base = Windows()
        chosen = {}
        for layer in (self.defaults, self.sites[site]):
            chosen.update({k: v for k, v in layer.model_dump(include=set(WindowSettings.model_fields)).items()
                           if v is not None})
        return Windows(**{**base.__dict__, **chosen})

    def keys(self) -> dict[str, str]:
        return {site: s.key for site, s in self.sites.items()}


def load_resolver_config(path: Path) -> ResolverConfig:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration {path} is not valid YAML: {exc}") from None
    try:
        config = ResolverConfig.model_validate(data or {})
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid resolver configuration:\n" + "\n".join(lines)) from None
    url = config.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        config.database_url = f"sqlite:///{Path(path).resolve().parent / url[len('sqlite:///'):]}"
    return config


def dump_resolver_config(config: ResolverConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json", exclude_none=True), sort_keys=False)
