"""Composition root: build stores, the engine, shares and front-ends; own their lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from gateway import webdav
from gateway.auth import ACCESS, Access, authenticate, authorize
from gateway.auth.basic import Authenticator
from gateway.engine import Engine
from gateway.errors import GatewayError, NotFound
from gateway.fs.mounts import needs_root, root_share
from gateway.fs.paths import DavPath, decode_path, split_target, strip_mount
from gateway.fs.share import Share
from gateway.http import errors as http_errors
from gateway.http.listing import serve_listing
from gateway.http.objects import get_path
from gateway.ops.expect import expect_continue
from gateway.ops.limits import LIMITS, Limits
from gateway.ops.metrics import GatewayCollector, Metrics, wsgidav_locks_held
from gateway.responses import StatusTable, plain, status_for
from gateway.settings import Settings
from gateway.storage.base import ObjectStore
from gateway.storage.factory import open_store
from gateway.webdav.headers import PUBLIC_HOSTS
from gateway.webdav.lockservice import LOCKS, LockService
from gateway.webdav.xml import XML_LIMITS, XmlLimits

log = logging.getLogger("bucketdav")

Handler = Callable[[web.Request, Share, DavPath], Awaitable[web.StreamResponse]]


@dataclass
class FrontEnd:
    """A set of method handlers and the one table mapping their errors to statuses."""

    handlers: dict[str, Handler]
    statuses: StatusTable


@dataclass
class Gateway:
    settings: Settings
    engine: Engine
    shares: list[Share]
    stores: list[ObjectStore]
    methods: dict[str, FrontEnd] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)  # the app's own registry

    def resolve(self, path: DavPath) -> tuple[Share, DavPath]:
        """The share serving ``path`` (longest mount first) and the path inside it."""
        for share in self.shares:
            inner = strip_mount(path, share.mount_parts)
            if inner is not None:
                return share, inner
        raise NotFound("no share is mounted here")

    async def close(self) -> None:
        await self.engine.close()
        for store in self.stores:
            await store.close()


GATEWAY = web.AppKey("gateway", Gateway)


async def http_get(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    max_ranges = request.app[GATEWAY].settings.server.max_ranges
    if path.trailing_slash or path.is_root:
        return await serve_listing(request, share, path)
    return await get_path(request, share, path, max_ranges)


HTTP = FrontEnd({"GET": http_get, "HEAD": http_get}, http_errors.STATUS)
WEBDAV = FrontEnd(webdav.HANDLERS, webdav.STATUS)


def build_gateway(settings: Settings, stores: list[ObjectStore]) -> Gateway:
    """The engine, shares and front-ends over open stores (one per share, in order)."""
    engine = Engine(settings.engine)
    metrics = Metrics()
    stores = [
        metrics.instrument(s.mount, store)
        for s, store in zip(settings.shares, stores, strict=True)
    ]
    shares = [
        Share(share_settings, engine.view(store))
        for share_settings, store in zip(settings.shares, stores, strict=True)
    ]
    shares.sort(key=lambda s: len(s.mount_parts), reverse=True)
    if needs_root(settings.shares):  # "/" lists the shares (last: the shortest mount)
        shares.append(root_share(engine, settings.shares))
    gateway = Gateway(settings, engine, shares, stores, metrics=metrics)
    for frontend in (WEBDAV, HTTP):
        for method in frontend.handlers:
            gateway.methods[method] = frontend
    return gateway


async def open_gateway(settings: Settings) -> Gateway:
    """Open every share's store and check it answers; raise a domain error if not."""
    stores: list[ObjectStore] = []
    try:
        for share_settings in settings.shares:
            store = await open_store(share_settings)
            stores.append(store)
            await store.check()
    except BaseException:
        for store in stores:
            await store.close()
        raise
    return build_gateway(settings, stores)


def allowed_methods(gateway: Gateway) -> str:
    return ", ".join(sorted(gateway.methods))


async def dispatch(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    frontend = gateway.methods.get(request.method)
    if frontend is None:
        return plain(
            405,
            f"method {request.method} is not supported",
            {"Allow": allowed_methods(gateway)},
        )
    try:
        raw_path, _ = split_target(request.raw_path)
        path = decode_path(raw_path)
        share, inner = gateway.resolve(path)
        share = authorize(request, share)  # 403 for what the user may not do; jails
        return await frontend.handlers[request.method](request, share, inner)
    except GatewayError as exc:
        status = status_for(exc, frontend.statuses)
        return plain(status, exc.message)


@web.middleware
async def last_resort(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Nothing unexpected reaches a client as a traceback."""
    try:
        return await handler(request)
    except (web.HTTPException, ConnectionResetError):
        raise
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return plain(500, "internal error (logged on the server)")


def make_app(gateway: Gateway) -> web.Application:
    limits = Limits(gateway.settings.limits)
    app = web.Application(
        middlewares=[last_resort, authenticate, limits.middleware],
        client_max_size=gateway.settings.limits.max_xml_bytes,
    )
    app[GATEWAY] = gateway
    app[LOCKS] = LockService()
    public = gateway.settings.server.public_host or ""
    app[PUBLIC_HOSTS] = frozenset(h.strip() for h in public.split(",") if h.strip())
    app[XML_LIMITS] = XmlLimits(
        max_bytes=gateway.settings.limits.max_xml_bytes,
        max_depth=gateway.settings.limits.max_xml_depth,
    )
    app[LIMITS] = limits
    if gateway.settings.auth.enabled:
        app[ACCESS] = Access(Authenticator(gateway.settings.auth))
    gateway.metrics.registry.register(GatewayCollector(
        gateway.metrics, gateway.engine, limits, lambda: wsgidav_locks_held(app[LOCKS])
    ))
    app.cleanup_ctx.append(limits.context)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        yield
        await gateway.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_route("*", "/{tail:.*}", dispatch, expect_handler=expect_continue)
    return app
