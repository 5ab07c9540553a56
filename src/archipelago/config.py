"""Cluster configuration: one YAML file, validated before anything starts.

Key names follow Arvados' config (lib/config/config.default.yml) in snake_case, so an operator
who knows one knows the other. Errors name the key and the reason.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .ids import CLUSTER_ID_RE


class ConfigError(ValueError):
    """A configuration that cannot work; the message names each offending key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


DIRECTORY_FIELDS = frozenset({"root", "fsync"})
S3_FIELDS = frozenset({"bucket", "endpoint", "region", "access_key", "secret_key", "prefix"})


class VolumeConfig(_Strict):
    driver: Literal["directory", "s3"]
    uuid: str | None = Field(default=None, description="defaults to <cluster>-nyw5e-<15 digits of its index>")
    read_only: bool = False
    storage_classes: list[str] = ["default"]
    replication: int = Field(default=1, ge=1)
    # directory (DIRECTORY_FIELDS)
    root: Path | None = None
    fsync: bool = True
    # s3 (S3_FIELDS)
    bucket: str | None = None
    endpoint: str | None = None
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = None
    prefix: str = ""

    @model_validator(mode="after")
    def _driver_fields(self) -> VolumeConfig:
        if self.driver == "directory" and self.root is None:
            raise ValueError("a directory volume needs 'root'")
        if self.driver == "s3" and not self.bucket:
            raise ValueError("an s3 volume needs 'bucket'")
        return self


class StorageClassConfig(_Strict):
    default: bool = False
    priority: int = 0


class CollectionsConfig(_Strict):
    blob_signing: bool = True
    blob_signing_key: str = Field(default_factory=lambda: secrets.token_hex(32), min_length=32)
    blob_signing_ttl: int = Field(default=14 * 24 * 3600, gt=0, description="seconds")
    blob_trash: bool = True
    blob_trash_lifetime: int = Field(default=14 * 24 * 3600, ge=0, description="seconds")
    blob_trash_check_interval: float = Field(default=24 * 3600, gt=0, description="seconds")
    default_replication: int = Field(default=2, ge=1)


class _Listening(_Strict):
    """A service that listens on host:port."""

    listen: str

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("expected host:port")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class KeepstoreConfig(_Listening):
    listen: str = "127.0.0.1:25107"
    remote_cache_bytes: int = Field(default=1 << 30, ge=0, description="disk for blocks read from other clusters")
    remote_cache_dir: Path | None = Field(default=None, description="where those blocks are kept; default: a "
                                          "fresh temporary directory per process")
    max_concurrent_puts: int = Field(default=32, ge=1, description="blocks being written at once; more get "
                                     "503 (clients retry), as Arvados' MaxKeepBlobBuffers")
    max_concurrent_puts_per_user: int = Field(default=8, ge=1, description="of those, how many one user may "
                                              "hold (the root token excepted): stalled uploads of one user "
                                              "cannot take every slot")
    body_read_timeout: float = Field(default=60.0, gt=0, description="seconds a block upload may stall "
                                     "between pieces before it is dropped")


class ApiConfig(_Listening):
    listen: str = "127.0.0.1:8000"
    external_url: str | None = Field(default=None, description="defaults to http://<listen>")
    max_items_per_response: int = Field(default=1000, ge=1)
    max_request_bytes: int = Field(default=128 << 20, ge=1024, description="largest request body the API "
                                   "reads (413 beyond it); read only after the token is checked")
    threads: int = Field(default=8, ge=1, description="threads running requests' database and peer calls")
    workers: int = Field(default=1, ge=1, le=64, description="API processes `archi cluster up` runs on the "
                         "API port (the kernel spreads connections); their caches stay coherent")
    tls_cert: Path | None = Field(default=None, description="serve HTTPS (the Arvados SDK insists on it)")
    tls_key: Path | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_cert else "http"
        return (self.external_url or f"{scheme}://{self.listen}").rstrip("/")

    @property
    def web_url(self) -> str:
        """The web UI (web/, at / on the API server): what `Services.Workbench2.ExternalURL` says, with its
        trailing slash, as Arvados clients join paths to it (`{it}collections/PDH`, `{it}processes/UUID`)."""
        return self.url + "/"


class RemoteClusterConfig(_Strict):
    host: str = Field(description="host:port of the remote cluster's API server")
    scheme: Literal["https", "http"] = "https"
    insecure: bool = Field(default=False, description="accept a self-signed certificate")
    activate_users: bool = Field(default=True, description="users of that cluster are active here")

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"


class LoginConfig(_Strict):
    remote_token_refresh: float = Field(default=300, gt=0, description="seconds a validated remote token is "
                                                                       "trusted before its home is asked again")
    login_cluster: str | None = Field(default=None, description="the one cluster that issues every user and "
                                      "token of the federation (Arvados LoginCluster); null: each cluster its own")

    def satellite_of(self, cluster_id: str) -> str | None:
        """The login cluster, when it is another cluster than `cluster_id`."""
        return self.login_cluster if self.login_cluster not in (None, cluster_id) else None


class ContainersConfig(_Strict):
    runtime: Literal["bubblewrap", "docker", "podman"] = Field(
        default="bubblewrap", description="how containers run on this cluster's compute (bubblewrap: host "
        "programs, isolated; docker or podman: the container's image, loaded from Keep)")
    podman_storage: str | None = Field(default=None, description="podman's --root/--runroot parent directory; "
                                       "default: podman's own")
    docker_host: str | None = Field(default=None, description="DOCKER_HOST for the docker runtime (e.g. "
                                    "unix:///run/docker.sock); default: the docker client's")
    dispatcher: Literal["local", "slurm", "none"] = Field(default="local", description="what `archi cluster up` "
                                                          "starts: the local dispatcher (processes on this "
                                                          "machine), the Slurm one (sbatch), or none")
    slurm_partition: str | None = Field(default=None, description="Slurm partition for containers' jobs")
    max_cores: int = Field(default=0, ge=0, description="cores the local dispatcher may fill; 0: this machine's")
    max_ram: int = Field(default=0, ge=0, description="bytes of RAM it may fill; 0: this machine's")
    work_dir: Path | None = Field(default=None, description="where containers' mounts and outputs are staged; "
                                  "default: the system temporary directory")
    poll_seconds: float = Field(default=0.5, gt=0, description="how often the dispatcher looks for work")
    host_path: list[str] = Field(default=[], description="directories shown (read-only) to bubblewrap "
                                 "containers and put first on their PATH: where this site installs tools (a "
                                 "virtualenv's bin/ brings its virtualenv)")
    sandbox_uids: str = Field(default="200000-200999", pattern=r"^[1-9][0-9]*-[1-9][0-9]*$",
                              description="the unprivileged uids containers run as, FIRST-LAST: one per "
                              "container running at once on a node; no account needs to exist")
    max_disk: int = Field(default=0, ge=0, description="bytes a container may write to its output and tmp "
                          "mounts before it is stopped; 0: no cap")
    min_free_disk: int = Field(default=256 << 20, ge=0, description="a container is stopped if the work "
                               "directory's filesystem gets less free than this (keep work_dir on a "
                               "filesystem of its own where tenants are not trusted)")
    image_user: bool = Field(default=False, description="docker/podman: run the command as the image's own "
                             "user (its USER, often root in the container) instead of the sandbox uid")


class GatewayConfig(_Listening):
    """A Keep service that serves blocks of data held elsewhere, read in place (`+K@<uuid>` hints)."""

    driver: Literal["path", "s3", "http"] = Field(description="path: files under `root` (a local or NFS "
                                                   "directory); s3: objects in `bucket`; http: URLs below `base_url`")
    uuid: str | None = Field(default=None, description="defaults to <cluster>-bi6l4-gateway<8 digits of its index>")
    root: Path | None = None
    bucket: str | None = None
    endpoint: str | None = None
    region: str = "us-east-1"
    access_key: str | None = None  # never sent to clients
    secret_key: str | None = None
    base_url: str | None = None
    standalone: bool = Field(default=False, description="run by `archi gateway` (on another host, say), "
                             "not by `archi cluster up`")
    cache_mib: int = Field(default=256, ge=0, description="verified blocks kept in memory, so a block read "
                           "again is not fetched from its store again")
    store_reads: int = Field(default=0, ge=0, description="blocks read from the store at once (each takes a "
                             "core to receive and check); 0: one per core. Raise it for a distant store")
    residency: Literal["cluster"] | None = Field(
        default=None, description="cluster: every block it serves stays on this cluster (readers from outside are "
        "refused) and collections of data registered through it get this residency policy")

    @model_validator(mode="after")
    def _driver_fields(self) -> GatewayConfig:
        needed = {"path": "root", "s3": "bucket", "http": "base_url"}[self.driver]
        if getattr(self, needed) is None:
            raise ValueError(f"a {self.driver} gateway needs {needed!r}")
        return self

    @property
    def service_type(self) -> str:
        return f"gateway:{self.driver}"

    @property
    def source(self) -> str:
        """Where its data lies, as users name it (`s3://bucket`, a URL, a directory): not a secret."""
        if self.driver == "s3":
            return f"s3://{self.bucket}"
        return str(self.base_url if self.driver == "http" else self.root).rstrip("/")


class ResolverLinkConfig(_Strict):
    """This site's resolvers (resolver/): it pushes its published identifiers, the PDHs it holds and
    a heartbeat to each; its clients and its federation router ask them in turn."""

    urls: list[str] = Field(default=[], description="resolver URLs (http://host:port), asked in this order")
    key: str | None = Field(default=None, min_length=16, description="the secret this site shares with its "
                            "resolvers (HMAC-SHA256): signs its pushes and PDH lookups, checks their polls")
    push: bool = Field(default=True, description="false: this site cannot reach its resolvers (firewalled); "
                       "they poll it")
    heartbeat_seconds: float = Field(default=10.0, gt=0, description="seconds between pushes when nothing "
                                     "changed (a change is pushed at once)")


class ClusterConfig(_Strict):
    cluster_id: str
    system_root_token: str = Field(default_factory=lambda: secrets.token_urlsafe(32), min_length=16)
    collections: CollectionsConfig = CollectionsConfig()
    storage_classes: dict[str, StorageClassConfig] = {"default": StorageClassConfig(default=True)}
    volumes: list[VolumeConfig] = []
    keepstore: KeepstoreConfig = KeepstoreConfig()
    api: ApiConfig = ApiConfig()
    database_url: str = "sqlite:///archipelago.db"
    keep_services: list[str] = Field(default=[], description="keepstore URLs; defaults to this keepstore")
    remote_clusters: dict[str, RemoteClusterConfig] = {}
    login: LoginConfig = LoginConfig()
    containers: ContainersConfig = ContainersConfig()
    gateways: list[GatewayConfig] = []
    resolver: ResolverLinkConfig = ResolverLinkConfig()

    @field_validator("cluster_id")
    @classmethod
    def _cluster_id(cls, value: str) -> str:
        if not CLUSTER_ID_RE.fullmatch(value):
            raise ValueError("must be 5 characters from [a-z0-9]")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ClusterConfig:
        for n, volume in enumerate(self.volumes):
            if volume.uuid is None:
                volume.uuid = f"{self.cluster_id}-nyw5e-{n:015d}"
            unknown = set(volume.storage_classes) - set(self.storage_classes)
            if unknown:
                raise ValueError(f"volumes.{n}.storage_classes: undefined storage class {sorted(unknown)}")
        for n, gateway in enumerate(self.gateways):
            if gateway.uuid is None:
                gateway.uuid = f"{self.cluster_id}-bi6l4-gateway{n:08d}"
        uuids = [v.uuid for v in self.volumes]
        if len(set(uuids)) != len(uuids):
            raise ValueError("volumes: two volumes share a uuid")
        for remote in self.remote_clusters:
            if not CLUSTER_ID_RE.fullmatch(remote) or remote == self.cluster_id:
                raise ValueError(f"remote_clusters: {remote!r} must be another cluster's 5-character ID")
        if not any(c.default for c in self.storage_classes.values()):
            raise ValueError("storage_classes: at least one class must have default: true")
        login = self.login.login_cluster
        if login is not None and login != self.cluster_id and login not in self.remote_clusters:
            raise ValueError(f"login.login_cluster: {login!r} is neither this cluster nor one of its remote_clusters")
        return self

    @property
    def keep_service_urls(self) -> list[str]:
        return self.keep_services or [f"http://{self.keepstore.listen}"]

    @property
    def system_user_uuid(self) -> str:
        return f"{self.cluster_id}-tpzed-000000000000000"

    @property
    def default_storage_classes(self) -> list[str]:
        return sorted(name for name, c in self.storage_classes.items() if c.default)


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        lines.append(f"  {key}: {err['msg']}")
    return "invalid configuration:\n" + "\n".join(lines)


def parse_config(data: dict[str, Any]) -> ClusterConfig:
    try:
        return ClusterConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def load_config(path: Path) -> ClusterConfig:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"configuration {path} must be a YAML mapping")
    config = parse_config(data)
    # relative paths in a config file are relative to the file, not to where the command runs
    base = Path(path).resolve().parent
    if config.database_url.startswith("sqlite:///") and not config.database_url.startswith("sqlite:////"):
        config.database_url = f"sqlite:///{base / config.database_url[len('sqlite:///'):]}"
    for volume in config.volumes:
        if volume.root is not None and not volume.root.is_absolute():
            volume.root = base / volume.root
    for gateway in config.gateways:
        if gateway.root is not None and not gateway.root.is_absolute():
            gateway.root = base / gateway.root
    if config.keepstore.remote_cache_dir is not None and not config.keepstore.remote_cache_dir.is_absolute():
        config.keepstore.remote_cache_dir = base / config.keepstore.remote_cache_dir
    for key in ("tls_cert", "tls_key"):
        value = getattr(config.api, key)
        if value is not None and not value.is_absolute():
            setattr(config.api, key, base / value)
    return config


def dump_config(config: ClusterConfig) -> str:
    """The configuration as YAML; each volume with only its own driver's settings."""
    data = config.model_dump(mode="json", exclude_none=True)
    for volume in data.get("volumes", []):
        foreign = S3_FIELDS if volume["driver"] == "directory" else DIRECTORY_FIELDS
        for key in foreign & volume.keys():
            del volume[key]
    return yaml.safe_dump(data, sort_keys=False)
