"""One cluster: write its configuration (`archi cluster init`) and run all its services in one
process (`archi cluster up`): the API server on uvicorn and the keepstore on aiohttp, sharing
one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gc
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..backend.local import LocalBackend
from ..config import ClusterConfig, dump_config, load_config, parse_config
from ..db.session import make_engine, migrate, refresh_statistics, session_factory
from ..files import private_directory, write_private
from ..lifetime import die_with_parent
from ..resolver.pusher import start_pushers
from .ports import free_port

if TYPE_CHECKING:
    from ..federation.router import FederatedBackend

CONFIG_NAME = "cluster.yml"
log = logging.getLogger("archipelago.cluster")
SHUTDOWN_SECONDS = 0.3  # how long requests in flight may finish after SIGTERM
ADMIN_TOKEN_NAME = "admin-token"
T = TypeVar("T")


def write_self_signed_certificate(cert_path: Path, key_path: Path) -> None:
    """A certificate for 127.0.0.1/localhost: the Arvados SDK only speaks HTTPS to the API."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "archipelago local cluster")])
    stamp = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(stamp - datetime.timedelta(days=1)).not_valid_after(stamp + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass
class InitResult:
    config_path: Path
    config: ClusterConfig
    admin_token: str


def backend_for(config: ClusterConfig, prepare: bool = True) -> LocalBackend:
    """The LocalBackend; with `prepare`, the schema is migrated and the planner statistics
    refreshed first (once per cluster start, not once per API process)."""
    engine = make_engine(config.database_url)
    if prepare:
        migrate(engine)
        refresh_statistics(engine)
    backend = LocalBackend(config, session_factory(engine))
    backend.bootstrap()
    return backend


def api_backend(config: ClusterConfig, local: LocalBackend) -> LocalBackend | FederatedBackend:
    """What the API server talks to: the local database, behind the federation router if there are peers."""
    from ..federation.remote import RemoteBackend
    from ..federation.router import FederatedBackend

    if not config.remote_clusters:
        return local
    remotes = {cid: RemoteBackend(cid, remote.url, config.cluster_id, remote.insecure)
               for cid, remote in config.remote_clusters.items()}
    return FederatedBackend(local, remotes, config.cluster_id, config.login.login_cluster, content_index(config))


def content_index(config: ClusterConfig) -> Any:
    """Who holds a PDH, asked of this site's resolvers (signed with its key); None without them."""
    if not (config.resolver.urls and config.resolver.key):
        return None
    from ..resolver.client import ResolverClient

    return ResolverClient(config.resolver.urls, config.cluster_id, config.resolver.key)


def site_tools() -> list[str]:
    """What a new cluster's bubblewrap containers find first on their PATH: the virtualenv this
    Archipelago runs from (its python3 has what Archipelago installed, matplotlib among it: the
    example meta-analysis draws its forest plot with it), or nothing outside a virtualenv."""
    prefix = Path(sys.prefix)
    return [str(prefix / "bin")] if (prefix / "pyvenv.cfg").exists() and (prefix / "bin").is_dir() else []


def init_cluster(directory: Path, cluster_id: str, database_url: str | None = None,
                 api_port: int | None = None, keep_port: int | None = None) -> InitResult:
    """Write a working configuration with fresh secrets, create the schema and an admin user."""
    directory = Path(directory).resolve()
    config_path = directory / CONFIG_NAME
    if config_path.exists():
        raise FileExistsError(f"{config_path} already exists; remove it or choose another directory")
    config = parse_config({  # validated before anything is written
        "cluster_id": cluster_id,
        "database_url": database_url or "sqlite:///archipelago.db",
        "volumes": [{"driver": "directory", "root": "keep"}],
        # one keepstore holds one copy; asking for two by default would fail every write
        "collections": {"default_replication": 1},
        "api": {"listen": f"127.0.0.1:{api_port or free_port()}", "tls_cert": "tls.crt", "tls_key": "tls.key"},
        "keepstore": {"listen": f"127.0.0.1:{keep_port or free_port()}", "remote_cache_dir": "remote-cache"},
        "containers": {"host_path": site_tools()},
    })
    private_directory(directory)  # its database, blocks and logs are the cluster's alone, not the host's users'
    write_self_signed_certificate(directory / "tls.crt", directory / "tls.key")
    write_private(config_path, dump_config(config))  # it holds the root token and the signing key
    config = load_config(config_path)
    backend = backend_for(config)
    token = backend.create_token(backend.identity.create_admin())
    write_private(directory / ADMIN_TOKEN_NAME, token + "\n")
    return InitResult(config_path, config, token)


def settle_heap() -> None:
    """Before a server starts answering: what start-up built (modules, ORM mappings, config) is
    moved out of the collector's reach, and collections are made rarer. With the defaults, a
    full collection walked all of it every few hundred requests: 80-136 ms pauses, the list
    benchmark's p99 (benchmarks/api_list.py). Requests make few cycles; their garbage is freed
    by reference counting."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def api_server(config: ClusterConfig, backend: Any, local: LocalBackend, own_signals: bool = True) -> Any:
    """The API on uvicorn. With `own_signals` False the caller handles SIGTERM/SIGINT (uvicorn would
    otherwise re-raise them after its shutdown and kill the process before the keepstore closed)."""
    import uvicorn

    from ..api.app import create_app

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if own_signals:
                with super().capture_signals():
                    yield
            else:
                yield

    server = Server(uvicorn.Config(
        create_app(config, backend, local.db.events), host=config.api.host, port=config.api.port, log_level="warning",
        access_log=False, ssl_certfile=str(config.api.tls_cert) if config.api.tls_cert else None,
        ssl_keyfile=str(config.api.tls_key) if config.api.tls_key else None,
        timeout_graceful_shutdown=1,  # seconds (an int for uvicorn); idle keep-alives go at once
    ))
    settle_heap()
    return server


def api_socket(config: ClusterConfig) -> socket.socket:
    """The API's listening socket. SO_REUSEPORT lets several API processes bind the same port;
    the kernel spreads new connections across them. TCP_NODELAY (inherited by each connection):
    uvicorn writes an answer's head and body apart, and Nagle held the second write back until
    the client's delayed ACK, 40 ms on every small answer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((config.api.host, config.api.port))
    sock.listen(2048)
    return sock


def serve_api(config: ClusterConfig, prepare: bool = True) -> None:
    """The API server alone (`archi api`): for clusters whose keepstores run elsewhere, and the
    extra API processes of `archi cluster up` (api.workers), which share its port."""
    sock = api_socket(config)
    local = backend_for(config, prepare)
    api_server(config, api_backend(config, local), local).run(sockets=[sock])


def start_api_workers(config: ClusterConfig, config_path: Path) -> list[subprocess.Popen]:
    """api.workers - 1 more API processes on the same port (this process is the first)."""
    parent = os.getpid()
    return [subprocess.Popen([sys.executable, "-m", "archipelago", "api", "--config", str(config_path), "--worker"],
                             preexec_fn=lambda: die_with_parent(parent=parent))
            for _ in range(config.api.workers - 1)]


async def serve_cluster(config: ClusterConfig, config_path: Path, ready: asyncio.Event | None = None,
                        progress: Callable[[str], None] | None = None) -> None:
    """All of a cluster's services in this process until SIGTERM or SIGINT, then a quick, clean exit:
    requests in flight get SHUTDOWN_SECONDS, idle keep-alive connections none. A signal while it is
    still starting (a database that does not answer) ends the start at once. `progress` hears each step."""
    from aiohttp import web

    from ..keepstore.app import create_app as create_keepstore
    from ..keepstore.store import BlockStore

    say = progress or (lambda step: None)
    if private_directory(config_path.parent):
        log.warning("%s was readable by other users of this host (made by an older `archi cluster init`); "
                    "it is now its owner's alone (0700)", config_path.parent)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    starting, this = True, asyncio.current_task()

    def on_signal() -> None:
        stop.set()
        if starting and this is not None:
            this.cancel()  # whatever step it waits for (the database, a port), the start ends here

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    keep_runner, gateway_runners, releasing = None, [], None
    pushing: list[asyncio.Task[None]] = []
    workers: list[subprocess.Popen] = []
    dispatcher = None
    server, serving = None, None
    try:
        say(f"opening the database ({_database_name(config)}) and bringing its schema up to date")
        local = await in_daemon_thread(backend_for, config)  # migrates the database first
        backend = api_backend(config, local)
        # who may store blocks: whoever the cluster's own identity code accepts (visitors included)
        keepstore = create_keepstore(config, BlockStore.from_config(config), local.restricted_blocks,
                                     authenticate=local.authenticate)
        keep_runner = web.AppRunner(keepstore, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        await keep_runner.setup()
        await web.TCPSite(keep_runner, config.keepstore.host, config.keepstore.port).start()
        say(f"keepstore listening on http://{config.keepstore.listen}")
        for gateway in config.gateways:
            if not gateway.standalone:
                gateway_runners.append(await _start_gateway(config, gateway, local))
                say(f"gateway {gateway.uuid} listening on http://{gateway.listen}")
        releasing = asyncio.create_task(_release_moved_copies(config, local))
        pushing = start_pushers(config, local)  # this site's pushes to its resolvers (resolver/pusher.py)
        server = api_server(config, backend, local, own_signals=False)
        serving = asyncio.create_task(server.serve(sockets=[api_socket(config)]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.02)
        say(f"API listening on {config.api.url}")
        workers = start_api_workers(config, config_path)
        if config.containers.dispatcher != "none":
            from ..compute.dispatch.service import start_in_thread

            dispatcher = await in_daemon_thread(start_in_thread, config, abandoned=lambda late: late.stop())
            say(f"{config.containers.dispatcher} dispatcher started")
        starting = False
        if ready is not None:
            ready.set()
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([serving, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
    except asyncio.CancelledError:
        if not (starting and stop.is_set()):
            raise
        say("stopped before it was up")
    finally:
        for task in pushing:
            task.cancel()
        if releasing is not None:
            releasing.cancel()
        if dispatcher is not None:
            dispatcher.stop()  # before the API goes: it would log the API as unreachable
        if serving is not None:  # also when stopped while starting: the API may already serve
            await _stop_api(server, serving)
        for worker in workers:
            worker.terminate()
        if keep_runner is not None:
            await keep_runner.cleanup()
        for runner in gateway_runners:
            await runner.cleanup()
        for worker in workers:
            worker.wait(SHUTDOWN_SECONDS * 4)


async def _stop_api(server: Any, serving: asyncio.Task[None]) -> None:
    """Requests in flight may finish; idle keep-alive TLS connections are not waited for. The
    server is stopped, never cancelled: a cancelled uvicorn leaves its lifespan task to be
    cancelled by the loop's end, which logs a traceback."""
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # idle keep-alives cut: expected
    server.should_exit = True
    try:
        await asyncio.wait_for(asyncio.shield(serving), SHUTDOWN_SECONDS)
    except TimeoutError:
        server.force_exit = True
        await serving


def _database_name(config: ClusterConfig) -> str:
    """The database, without a password the URL may carry."""
    url = config.database_url
    return url.split("://", 1)[0] + "://…@" + url.rsplit("@", 1)[1] if "@" in url else url


async def in_daemon_thread(function: Callable[..., T], *args: Any,
                           abandoned: Callable[[T], None] | None = None) -> T:
    """`function(*args)` in a daemon thread. Unlike asyncio.to_thread, a call that never returns (a
    database that accepts the connection and never answers) keeps neither the caller nor the
    process's exit waiting once the caller stops waiting. A result that arrives after the caller
    stopped waiting goes to `abandoned` (a dispatcher that started after all must be stopped)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    gone = threading.Event()  # the caller stopped waiting

    def give_up(result: T) -> None:
        if abandoned is not None:
            abandoned(result)

    def succeed(result: T) -> None:
        if future.done():
            give_up(result)
        else:
            future.set_result(result)

    def fail(error: BaseException) -> None:
        if not future.done():
            future.set_exception(error)

    def work() -> None:
        try:
            result = function(*args)
        except BaseException as exc:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                loop.call_soon_threadsafe(fail, exc)
            return
        if gone.is_set():
            give_up(result)
            return
        try:
            loop.call_soon_threadsafe(succeed, result)
        except RuntimeError:
            give_up(result)

    threading.Thread(target=work, name=getattr(function, "__name__", "work"), daemon=True).start()
    try:
        return await future
    finally:
        gone.set()


async def _release_moved_copies(config: ClusterConfig, local: Any) -> None:
    """Copies a move left behind, released when no reader can need them (gateway/release.py),
    checked as often as keepstore empties its trash."""
    from ..gateway.release import Releaser, release_forever

    await release_forever(Releaser(config, local.db.session), config.collections.blob_trash_check_interval)


async def _start_gateway(config: ClusterConfig, gateway: Any, local: Any) -> Any:
    """One of the cluster's gateways (gateway/), serving on its own port beside the keepstore."""
    from aiohttp import web

    from ..gateway.service import Gateway

    service = Gateway(config, gateway, local.db.session, local.restricted_blocks,
                      registrant=local.gateway_registrant)  # who may register: the cluster's own identity code
    runner = web.AppRunner(service.app(), access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    await web.TCPSite(runner, gateway.host, gateway.port).start()
    return runner


async def serve_gateways(config: ClusterConfig, on_ready: Any = None) -> None:
    """`archi gateway`: the configured gateways alone, until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    local = await asyncio.to_thread(backend_for, config, False)  # the cluster migrates its own database
    runners = [await _start_gateway(config, gateway, local) for gateway in config.gateways if gateway.standalone]
    if on_ready is not None:
        on_ready()
    try:
        await stop.wait()
    finally:
        for runner in runners:
            await runner.cleanup()


def load_cluster(directory: Path) -> tuple[ClusterConfig, str | None]:
    directory = Path(directory)
    config = load_config(directory / CONFIG_NAME)
    token_file = directory / ADMIN_TOKEN_NAME
    return config, token_file.read_text().strip() if token_file.exists() else None
