"""The aiohttp side of access control.

``authenticate`` (a middleware) answers 401/429 or attaches the request's ``User`` under
the typed key ``USER`` (the throttle sees the client address ``--trusted-proxy``
allows); ``authorize`` is called by ``dispatch`` once the share is known:
it refuses what the user's grant does not allow (403, before any handler runs) and
returns the share the user actually sees (jailed, or a root listing only their shares).
Without users and without anonymous mode no ``ACCESS`` is installed and both pass.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from gateway.auth.basic import Authenticator
from gateway.auth.principal import USER
from gateway.auth.proxies import client_address
from gateway.auth.throttle import Throttled
from gateway.auth.users import WRITE_METHODS, User, refusal
from gateway.errors import NotPermitted
from gateway.fs.mounts import ROOT_REFUSAL, RootShare, is_root, jailed, narrowed_root
from gateway.fs.share import Share
from gateway.responses import plain


class Access:
    """The authenticator and the shares derived per grant (jails, per-user roots).

    Derived shares are cached: their number is bounded by the config (jails and grants
    only come from it), and reusing them keeps one Share object per view of a share.
    """

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator
        self.challenge = {"WWW-Authenticate": f'Basic realm="{authenticator.settings.realm}"'}
        self._jails: dict[tuple[int, str], Share] = {}
        self._roots: dict[tuple[int, tuple[str, ...]], Share] = {}

    async def context(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: the authenticator's threads end with the app."""
        yield
        self.authenticator.close()

    def jailed(self, share: Share, jail: str) -> Share:
        key = (id(share), jail)
        derived = self._jails.get(key)
        if derived is None:
            derived = self._jails[key] = jailed(share, jail)
        return derived

    def root_for(self, root: Share, user: User) -> Share:
        """The root listing only the shares ``user`` may see."""
        assert isinstance(root, RootShare)
        names = user.visible(root.mount_names)
        key = (id(root), names)
        derived = self._roots.get(key)
        if derived is None:
            derived = self._roots[key] = narrowed_root(root, names)
        return derived


ACCESS = web.AppKey("bucketdav.access", Access)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    access = request.app.get(ACCESS)
    if access is None:
        return await handler(request)
    auth = access.authenticator
    header = request.headers.get("Authorization")
    user: User | Throttled | None
    if header is None:
        user = auth.anonymous
        if user is None:
            return plain(401, "authentication required", access.challenge)
    else:
        user = await auth.authenticate(client_address(request, auth.proxies), header)
        if isinstance(user, Throttled):
            return plain(429, f"{user.reason}: retry later",
                         {"Retry-After": str(math.ceil(user.retry_after))})
        if user is None:
            return plain(401, "wrong user name or password", access.challenge)
    request[USER] = user
    return await handler(request)


def authorize(request: web.Request, share: Share) -> Share:
    """The share this request may use, or NotPermitted (403) naming why not."""
    user = request.get(USER)
    access = request.app.get(ACCESS)
    if is_root(share):
        if request.method in WRITE_METHODS:
            raise NotPermitted(ROOT_REFUSAL)
        return share if user is None or access is None else access.root_for(share, user)
    if user is None or access is None:
        return share
    name = "/".join(share.mount_parts)
    reason = refusal(user, name, request.method)
    if reason is not None:
        raise NotPermitted(reason)
    grant = user.grant(name)
    assert grant is not None  # refusal() checked it
    return access.jailed(share, grant.jail)
