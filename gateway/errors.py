"""Domain errors, and the one table mapping them to statuses for every front-end.

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


class MethodNotAllowed(GatewayError):
    """The method does not apply to what is at the path (PUT on a collection, MKCOL where
    something exists). ``collection`` says what is there, None when it is not known: the
    app answers with the ``Allow`` its method table gives that kind of resource."""

    default_message = "method not allowed here"

    def __init__(self, message: str | None = None, *, collection: bool | None = None) -> None:
        super().__init__(message)
        self.collection = collection


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


class InsufficientStorage(GatewayError):
    """The server will not keep more of what the request needs kept (locks past a cap)."""

    default_message = "insufficient storage"


class AccessDenied(GatewayError):
    """The store refused the gateway's own credentials."""

    default_message = "the store refused the gateway's credentials"


class NotSupported(GatewayError):
    """The store cannot do what the request asks (versions of a local folder)."""

    default_message = "not supported by this store"


class Upstream(GatewayError):
    """The store answered with an error the gateway cannot serve around."""

    default_message = "the store failed"


class Unavailable(Upstream):
    """The store could not be reached, or the gateway is out of capacity."""

    default_message = "the store is unavailable"


class StateUnavailable(GatewayError):
    """The shared state store (``--state``) could not be reached in time: what needs it
    (locks, dead properties, guarded writes) waits for it to come back."""

    default_message = "the state store (--state) is unavailable"


# HTTP and WebDAV answer every domain error alike (RFC 4918 keeps HTTP's meaning: a refused
# write is 403, a failed precondition or an existing target with Overwrite: F is 412, a
# missing parent 409), so one table serves both front-ends and the 207 member statuses.
STATUS: dict[type[GatewayError], int] = {
    BadRequest: 400,
    TooLarge: 413,
    NotFound: 404,
    MethodNotAllowed: 405,
    Exists: 412,
    NotPermitted: 403,
    Conflict: 409,
    PreconditionFailed: 412,
    Locked: 423,
    InsufficientStorage: 507,
    AccessDenied: 403,
    NotSupported: 501,
    Unavailable: 503,
    StateUnavailable: 503,
    Upstream: 502,
}


def status_for(exc: GatewayError) -> int:
    """The status of the most specific class of ``exc`` in ``STATUS``."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500
