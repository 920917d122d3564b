"""Run the gateway: listeners (TLS, connection guard), the admin port, graceful shutdown.

Shutdown on SIGTERM/SIGINT: the readiness probe turns 503, the listener closes, requests
in flight get ``shutdown_grace`` seconds to finish, the rest are cancelled (an upload
cancelled this way aborts its multipart upload: nothing partial becomes visible), the
stores close, and the process exits 0.

With ``--workers N`` (N > 1) ``serve`` runs ``serve_workers``: a parent that holds the
port, starts N workers (each this same ``serve``, listening with SO_REUSEPORT) through
``gateway.ops.workers.Supervisor``, serves the admin port for all of them, and on
SIGTERM/SIGINT passes the signal on and waits for their drains.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import ssl
import sys
from typing import Any

from aiohttp import web

from gateway.app import GATEWAY, Gateway, make_app, open_gateway
from gateway.auth import ACCESS
from gateway.errors import GatewayError
from gateway.ops.accesslog import ACCESS_LOGGER, observer_class
from gateway.ops.admin import Readiness, make_admin_app, make_workers_admin_app
from gateway.ops.limits import LIMITS, Limits
from gateway.ops.workers import Supervisor, WorkerLink, WorkerTarget
from gateway.ops.workers import check as check_workers
from gateway.settings import Settings, SettingsError, is_loopback

log = logging.getLogger("bucketdav")

CLEANUP_GRACE = 5.0


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server context: TLS 1.2 at least, the library's default ciphers."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"cannot use --tls-cert {cert} / --tls-key {key}: {exc}") from None
    return context


class GuardedSite(web.BaseSite):
    """A TCP listener whose connections go through ``Limits`` (count, body watch)."""

    __slots__ = ("_host", "_limits", "_port", "_reuse_port")

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        limits: Limits,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 512,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self._limits = limits
        self._reuse_port = reuse_port  # a worker: its siblings listen on the same port

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._limits.protocol_factory(server),
            self._host,
            self._port,
            ssl=self._ssl_context,
            # a handshake is part of the request head: bounded alike, not by asyncio's 60 s
            ssl_handshake_timeout=(
                self._limits.settings.header_timeout if self._ssl_context else None),
            backlog=self._backlog,
            reuse_address=True,
            reuse_port=self._reuse_port or None,
        )


# Allocations between two collections of the youngest generation (CPython's default: 700).
# A 4 KiB GET allocates a few hundred containers that die by reference counting; at 700
# the collector ran about once a request, a few % of its CPU, for cycles that are rare.
YOUNG_GC_THRESHOLD = 20_000


def young_collection_threshold() -> None:
    young, older, oldest = gc.get_threshold()
    gc.set_threshold(max(YOUNG_GC_THRESHOLD, young), older, oldest)


def runner_options(app: web.Application) -> dict[str, Any]:
    """``AppRunner`` (and ``aiohttp_client(server_kwargs=...)``) options for ``app``."""
    gateway = app[GATEWAY]
    settings = gateway.settings
    return {
        "handle_signals": False,
        # serve() drains for shutdown_grace itself; this is what cancelled requests get
        # to clean up (abort their multipart uploads) before their connections close
        "shutdown_timeout": CLEANUP_GRACE,
        # A client hanging up mid-request is an expected event: its handler is not
        # cancelled but sees the failure where it touches the connection (a write, a body
        # read), so a cut read ends like any other, logged and counted once, and a
        # half-received upload is aborted by the exception its body read raises.
        "handler_cancellation": False,
        "max_line_size": settings.limits.max_url_bytes,
        "max_field_size": settings.limits.max_header_bytes,
        "max_headers": settings.limits.max_headers,
        "keepalive_timeout": settings.limits.keepalive_timeout,
        "access_log": logging.getLogger(ACCESS_LOGGER),
        # the proxies the limits already parsed from --trusted-proxy
        "access_log_class": observer_class(
            gateway.metrics, settings.ops.access_log, app[LIMITS].proxies
        ),
    }


def _url(scheme: str, host: str, port: int) -> str:
    return f"{scheme}://[{host}]:{port}/" if ":" in host else f"{scheme}://{host}:{port}/"


def describe(settings: Settings) -> str:
    if len(settings.shares) == 1:
        return str(settings.shares[0].source)
    return f"{len(settings.shares)} shares ({', '.join(s.mount for s in settings.shares)})"


def warnings_for(settings: Settings) -> list[str]:
    found = []
    if not settings.auth.enabled and not is_loopback(settings.server.host):
        found.append(
            f"no users are configured: anyone who can reach {settings.server.host} may read "
            "and write (see --htpasswd and [[user]] in docs/OPERATIONS.md)"
        )
    return found


async def start_admin(settings: Settings, app: web.Application) -> web.AppRunner | None:
    """The admin listener; failing to bind it is reported but does not stop the gateway
    (the shares still serve; the probes that cannot connect will show the problem)."""
    ops = settings.ops
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, ops.admin_host, ops.admin_port, reuse_address=True).start()
    except OSError as exc:
        await runner.cleanup()
        print(f"bucketdav: warning: no admin endpoints: cannot listen on "
              f"{ops.admin_host}:{ops.admin_port}: {exc}", file=sys.stderr, flush=True)
        return None
    return runner


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def serve(
    settings: Settings,
    ready: asyncio.Event | None = None,
    *,
    worker: WorkerLink | None = None,
    worker_target: WorkerTarget | None = None,
) -> int:
    """Run until SIGINT/SIGTERM, then drain within the grace period. Returns exit code.

    ``worker``: this process is one of several workers (its parent's link): it listens with
    SO_REUSEPORT, tells the parent when it serves instead of printing where, and drains
    when its parent goes away. ``worker_target``: what a worker process runs, for
    ``--workers N`` (the command's entry point, which sets up logging and the loop)."""
    if settings.server.workers > 1:
        if worker_target is None:
            raise ValueError("--workers N needs a worker_target")
        return await serve_workers(settings, worker_target, ready)
    try:
        context = (
            tls_context(settings.server.tls_cert, settings.server.tls_key)
            if settings.server.tls_cert and settings.server.tls_key else None
        )
        gateway: Gateway = await open_gateway(settings)
    except SettingsError as exc:
        print(f"bucketdav: {exc}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"bucketdav: cannot serve {describe(settings)}: {exc.message}", file=sys.stderr)
        return 2
    try:
        app = make_app(gateway)
    except SettingsError as exc:
        await gateway.close()
        print(f"bucketdav: {exc}", file=sys.stderr)
        return 2
    warnings = warnings_for(settings) + (
        app[ACCESS].authenticator.prepare() if ACCESS in app else []
    )
    for warning in warnings if worker is None or worker.index == 0 else []:
        print(f"bucketdav: warning: {warning}", file=sys.stderr)

    server = settings.server
    runner = web.AppRunner(app, **runner_options(app))
    await runner.setup()
    # What start-up made (botocore's models, the stores, the app) lives as long as the
    # process: frozen, a full collection no longer walks it (a 56 ms pause was seen inside
    # a 10,000-entry listing).
    gc.collect()
    gc.freeze()
    young_collection_threshold()
    readiness = Readiness([(s.mount, store) for s, store in
                           zip(settings.shares, gateway.stores, strict=True)], gateway.state)
    admin_runner: web.AppRunner | None = None
    try:
        site = GuardedSite(runner, server.host, server.port, app[LIMITS], context,
                           reuse_port=worker is not None)
        await site.start()
        host, port = runner.addresses[0][:2]
    except OSError as exc:
        await runner.cleanup()
        print(f"bucketdav: cannot listen on {server.host}:{server.port}: {exc}", file=sys.stderr)
        return 2
    if settings.ops.admin:
        admin_runner = await start_admin(settings, make_admin_app(readiness, gateway.metrics))
    stop = asyncio.Event()
    stop_on_signals(stop)
    if worker is not None:
        worker.started(admin_runner.addresses[0][1] if admin_runner is not None else None)
        worker.watch(asyncio.get_running_loop(), stop.set)
    else:
        scheme = "https" if context else "http"
        print(f"bucketdav: serving {describe(settings)} at {_url(scheme, host, port)}",
              flush=True)
        announce_admin(admin_runner)
    if ready is not None:
        ready.set()
    await stop.wait()
    readiness.draining = True
    print(f"bucketdav: shutting down (in-flight requests get {server.shutdown_grace:g} s)",
          file=sys.stderr, flush=True)
    # Drain before aiohttp's own shutdown: that one stops reading request bodies at once,
    # so an upload in flight could not finish within the grace period.
    await site.stop()
    limits = app[LIMITS]
    if not await limits.drained(server.shutdown_grace):
        print(f"bucketdav: cancelling {limits.in_flight} request(s) still running "
              "(uploads are aborted)", file=sys.stderr, flush=True)
    await runner.cleanup()
    if admin_runner is not None:
        await admin_runner.cleanup()
    print("bucketdav: stopped", file=sys.stderr, flush=True)
    return 0


def announce_admin(admin_runner: web.AppRunner | None) -> None:
    if admin_runner is not None:
        admin_host, admin_port = admin_runner.addresses[0][:2]
        print(f"bucketdav: admin endpoints (livez, readyz, metrics) at "
              f"{_url('http', admin_host, admin_port)}", flush=True)


async def serve_workers(
    settings: Settings, target: WorkerTarget, ready: asyncio.Event | None = None
) -> int:
    """The parent of ``--workers N``: start them, keep them running, drain them on
    SIGTERM/SIGINT. Exit status 2 when they cannot start, 1 when they keep dying."""
    server = settings.server
    try:
        check_workers(settings)
    except SettingsError as exc:
        print(f"bucketdav: {exc}", file=sys.stderr)
        return 2
    supervisor = Supervisor(settings, target)
    try:
        port = supervisor.reserve()
    except OSError as exc:
        print(f"bucketdav: cannot listen on {server.host}:{server.port}: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    stop_on_signals(stop)
    failed = await supervisor.start(stop)
    if failed is not None:
        return failed
    admin_runner = await start_admin(settings, make_workers_admin_app(supervisor)) \
        if settings.ops.admin else None
    scheme = "https" if server.tls else "http"
    print(f"bucketdav: {supervisor.count} workers serving {describe(settings)} at "
          f"{_url(scheme, server.host, port)}", flush=True)
    announce_admin(admin_runner)
    if ready is not None:
        ready.set()
    gave_up = await supervisor.supervise(stop)
    if gave_up is None:
        print(f"bucketdav: shutting down {supervisor.count} workers (in-flight requests get "
              f"{server.shutdown_grace:g} s)", file=sys.stderr, flush=True)
        status = await supervisor.stop(server.shutdown_grace)
    else:
        status = gave_up
    if admin_runner is not None:
        await admin_runner.cleanup()
    print("bucketdav: stopped", file=sys.stderr, flush=True)
    return status
