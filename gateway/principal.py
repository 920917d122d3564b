"""Who a request acts for, as the front-ends see it (a leaf, like errors and settings).

Authentication sets it; WebDAV locks are bound to it, so a lock token learnt from another
user's PROPFIND (lockdiscovery shows tokens) does not let that user write or unlock.
"""

from __future__ import annotations

from aiohttp import web

ANONYMOUS = "anonymous"
PRINCIPAL = web.RequestKey("bucketdav.principal", str)


def principal_of(request: web.Request) -> str:
    """The authenticated user's name, or ``anonymous`` (also when auth is off)."""
    return request.get(PRINCIPAL) or ANONYMOUS
