"""Composition root: build stores, the engine, shares and front-ends; own their lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from gateway import http, webdav
from gateway.auth import ACCESS, Access, authenticate, authorize
from gateway.auth.basic import Authenticator
from gateway.auth.proxies import TrustedProxies
from gateway.engine import Engine
from gateway.engine.diskcache import open_disk_cache
from gateway.errors import GatewayError, MethodNotAllowed, NotFound, status_for
from gateway.fs.mounts import needs_root, root_share
from gateway.fs.noise import NoiseArea
from gateway.fs.paths import DavPath, decode_path, split_target, strip_mount
from gateway.fs.share import Share
from gateway.http import MAX_RANGES
from gateway.ops.expect import expect_continue
from gateway.ops.limits import LIMITS, Limits
from gateway.ops.metrics import GatewayCollector, Metrics
from gateway.responses import CLIENT_GONE, CUT, Cut, plain
from gateway.settings import Settings
from gateway.state import MemoryState, StateStore, open_state
from gateway.storage.asof import as_of_store
from gateway.storage.base import ObjectStore
from gateway.storage.factory import connection_limit, open_store
from gateway.webdav.deadprops import PROPS, DeadProps
from gateway.webdav.headers import PUBLIC_HOSTS
from gateway.webdav.lockservice import LOCKS, LockService
from gateway.webdav.xml import XML_LIMITS, XmlLimits

log = logging.getLogger("bucketdav")

Handler = Callable[[web.Request, Share, DavPath], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Method:
    """A method's handler, and the resources it applies to where something exists."""

    handler: Handler
    on_file: bool = True
    on_collection: bool = True


async def options(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    return webdav.options_answer(allow())


# Every method the gateway answers. The Allow headers (of OPTIONS and of every 405) are
# derived from this table, never written by hand.
METHODS: dict[str, Method] = {
    "OPTIONS": Method(options),
    "GET": Method(http.get),
    "HEAD": Method(http.get),
    "PROPFIND": Method(webdav.propfind),
    "PROPPATCH": Method(webdav.proppatch),
    "MKCOL": Method(webdav.mkcol, on_file=False, on_collection=False),  # only where nothing is
    "PUT": Method(webdav.put, on_collection=False),
    "DELETE": Method(webdav.delete),
    "COPY": Method(webdav.copy),
    "MOVE": Method(webdav.move),
    "LOCK": Method(webdav.lock),
    "UNLOCK": Method(webdav.unlock),
}


def allow(collection: bool | None = None) -> str:
    """The Allow header for a collection, a file, or (None) the server as a whole."""
    return ", ".join(
        name for name, method in METHODS.items()
        if collection is None or (method.on_collection if collection else method.on_file)
    )


@dataclass
class Gateway:
    settings: Settings
    engine: Engine
    shares: list[Share]
    stores: list[ObjectStore]
    metrics: Metrics = field(default_factory=Metrics)  # the app's own registry
    state: StateStore = field(default_factory=MemoryState)  # what processes share (--state)

    def resolve(self, path: DavPath) -> tuple[Share, DavPath]:
        """The share serving ``path`` (longest mount first) and the path inside it."""
        for share in self.shares:
            inner = strip_mount(path, share.mount_parts)
            if inner is not None:
                return share, inner
        raise NotFound("no share is mounted here")

    async def close(self) -> None:
        await self.engine.close()
        if self.engine.blocks.disk is not None:  # after the engine: its last blocks land
            await self.engine.blocks.disk.close()
        for store in self.stores:
            await store.close()
        await self.state.close()


GATEWAY = web.AppKey("gateway", Gateway)


def build_gateway(
    settings: Settings, stores: list[ObjectStore], state: StateStore | None = None
) -> Gateway:
    """The engine, shares and front-ends over open stores (one per share, in order) and
    the state store (a fresh ``memory`` one by default)."""
    state = state if state is not None else MemoryState()
    engine = Engine(settings.engine)
    # Cache invalidation always; a state other processes share guards creates too.
    engine.use_state(state, shared=not isinstance(state, MemoryState))
    metrics = Metrics()
    stores = [
        metrics.instrument(s.mount, store)
        for s, store in zip(settings.shares, stores, strict=True)
    ]
    shares = [
        Share(share_settings, engine.view(store, connection_limit(share_settings)),
              NoiseArea(state, f"{store.description} {share_settings.mount}"))
        for share_settings, store in zip(settings.shares, stores, strict=True)
    ]
    shares.sort(key=lambda s: len(s.mount_parts), reverse=True)
    if needs_root(settings.shares):  # "/" lists the shares (last: the shortest mount)
        shares.append(root_share(engine, settings.shares))
    gateway = Gateway(settings, engine, shares, stores, metrics=metrics, state=state)
    return gateway


async def open_gateway(settings: Settings) -> Gateway:
    """Open the state store and every share's store and check they answer; raise a domain
    error if not. The --cache directory is taken first: refused before anything opens."""
    disk = open_disk_cache(settings.engine)
    try:
        state = await open_state(settings.server.state)
    except BaseException:
        if disk is not None:
            await disk.close()
        raise
    stores: list[ObjectStore] = []
    try:
        for share_settings in settings.shares:
            store = as_of_store(await open_store(share_settings), share_settings.policy.as_of)
            stores.append(store)
            await store.check()
    except BaseException:
        for store in stores:
            await store.close()
        await state.close()
        if disk is not None:
            await disk.close()
        raise
    gateway = build_gateway(settings, stores, state)
    if disk is not None:
        gateway.engine.blocks.use_disk(disk)
    return gateway


async def dispatch(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    try:
        method = METHODS.get(request.method)
        if method is None:
            raise MethodNotAllowed(f"method {request.method} is not supported")
        raw_path, _ = split_target(request.raw_path)
        path = decode_path(raw_path)
        share, inner = gateway.resolve(path)
        share = authorize(request, share)  # 403 for what the user may not do; jails
        return await method.handler(request, share, inner)
    except MethodNotAllowed as exc:
        return plain(status_for(exc), exc.message, {"Allow": allow(exc.collection)})
    except GatewayError as exc:
        return plain(status_for(exc), exc.message)


@web.middleware
async def last_resort(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Nothing unexpected reaches a client as a traceback."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except ConnectionResetError:
        # The client went away mid-body (an upload cut short): its upload is already
        # aborted, so this is an expected event, one access-log line and no traceback.
        # The reply (499, nginx's "client closed request") is never delivered.
        resp = plain(499, CLIENT_GONE)
        request[CUT] = Cut(CLIENT_GONE, 0)
        resp.force_close()
        return resp
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return plain(500, "internal error (logged on the server)")


def make_app(gateway: Gateway) -> web.Application:
    proxies = TrustedProxies.parse(gateway.settings.auth.trusted_proxy)
    limits = Limits(gateway.settings.limits, proxies)
    # Without users nothing is authenticated: no middleware layer for every request.
    checks = [authenticate] if gateway.settings.auth.enabled else []
    app = web.Application(
        middlewares=[last_resort, *checks, limits.middleware],
        client_max_size=gateway.settings.limits.max_xml_bytes,
    )
    app[GATEWAY] = gateway
    app[LOCKS] = LockService(gateway.state, gateway.settings.limits)
    app[PROPS] = DeadProps(gateway.state)
    public = gateway.settings.server.public_host or ""
    app[PUBLIC_HOSTS] = frozenset(h.strip() for h in public.split(",") if h.strip())
    app[MAX_RANGES] = gateway.settings.server.max_ranges
    app[XML_LIMITS] = XmlLimits(
        max_bytes=gateway.settings.limits.max_xml_bytes,
        max_depth=gateway.settings.limits.max_xml_depth,
    )
    app[LIMITS] = limits
    if gateway.settings.auth.enabled:
        app[ACCESS] = access = Access(Authenticator(gateway.settings.auth, proxies=proxies))
        app.cleanup_ctx.append(access.context)
    gateway.metrics.registry.register(GatewayCollector(
        gateway.metrics, gateway.engine, limits, lambda: app[LOCKS].count()
    ))
    app.cleanup_ctx.append(limits.context)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        quotas = [s.quota for s in gateway.shares if s.quota is not None]
        for quota in quotas:  # counted in the background, never on a request's path
            quota.start()
        yield
        for quota in quotas:
            await quota.stop()
        await gateway.close()

    app.cleanup_ctx.append(lifecycle)
    # [\s\S]: a decoded %0A must reach dispatch (a clear 400), not fall through to a 404.
    app.router.add_route("*", r"/{tail:[\s\S]*}", dispatch, expect_handler=expect_continue)
    return app
