"""Who a request acts for: one typed request key, set by authentication.

WebDAV locks are bound to the principal, so a lock token learnt from another user's
PROPFIND (lockdiscovery shows tokens) does not let that user write or unlock.
"""

from __future__ import annotations

from aiohttp import web

from gateway.auth.users import ANONYMOUS, User

USER = web.RequestKey("bucketdav.user", User)


def principal_of(request: web.Request) -> str:
    """The authenticated user's name, or ``anonymous`` (also when auth is off)."""
    user = request.get(USER)
    return user.label if user is not None else ANONYMOUS
