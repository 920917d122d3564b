"""Who is asking and what they may do: HTTP Basic users, rights per share, jails.

``users`` holds the pure decisions, ``htpasswd`` and ``basic`` check passwords (bcrypt,
the same time for every name, cached), ``throttle`` slows down repeated failures per
address and user and per account, ``proxies`` says which address a request comes from
behind ``--trusted-proxy`` proxies, and ``access`` is the aiohttp glue: the middleware
that attaches the user and ``authorize`` that ``dispatch`` calls once it knows the share.
"""

from __future__ import annotations

from gateway.auth.access import ACCESS, Access, authenticate, authorize
from gateway.auth.principal import USER
from gateway.auth.users import WRITE_METHODS, User

__all__ = ["ACCESS", "USER", "WRITE_METHODS", "Access", "User", "authenticate", "authorize"]
