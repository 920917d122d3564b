"""Domain errors. Each front-end maps these to statuses in one table.

The message is shown to the client as a short plain-text body, so it must name the
problem (and, for refusals, the flag that would allow the operation) without leaking
internals such as stack traces or credentials.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error a request can end with on purpose."""

    default_message = "error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self.args[0])


class BadRequest(GatewayError):
    default_message = "bad request"


class InvalidPath(BadRequest):
    default_message = "invalid path"


class TooLarge(GatewayError):
    default_message = "request too large"


class NotFound(GatewayError):
    default_message = "not found"


class Exists(GatewayError):
    default_message = "already exists"


class NotPermitted(GatewayError):
    """Refused by the share's semantics (read-only, no overwrite, no delete, ...)."""

    default_message = "operation not permitted"


class Conflict(GatewayError):
    """The request does not fit the namespace (missing parent, file vs directory)."""

    default_message = "conflict"


class PreconditionFailed(GatewayError):
    default_message = "precondition failed"


class ObjectChanged(PreconditionFailed):
    """The object was replaced while it was being read (If-Match failed mid-read)."""

    default_message = "object changed during the read"


class Locked(GatewayError):
    default_message = "resource is locked"


class AccessDenied(GatewayError):
    """The store refused the gateway's own credentials."""

    default_message = "the store refused the gateway's credentials"


class Upstream(GatewayError):
    """The store answered with an error the gateway cannot serve around."""

    default_message = "the store failed"


class Unavailable(Upstream):
    """The store could not be reached, or the gateway is out of capacity."""

    default_message = "the store is unavailable"
