"""Who is asking and what they may do: HTTP Basic users, rights per share, jails.

``users`` holds the pure decisions, ``htpasswd`` and ``basic`` check passwords (bcrypt,
constant time, cached), ``throttle`` slows down repeated failures, and ``access`` is the
aiohttp glue: the middleware that attaches the user and ``authorize`` that ``dispatch``
calls once it knows the share.
"""

from __future__ import annotations

from gateway.auth.access import ACCESS, Access, authenticate, authorize
from gateway.auth.principal import USER
from gateway.auth.users import WRITE_METHODS, User

__all__ = ["ACCESS", "USER", "WRITE_METHODS", "Access", "User", "authenticate", "authorize"]
