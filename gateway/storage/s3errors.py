"""S3 failures as domain errors: one table of S3 error codes, applied once at the edge.

``translating`` wraps each S3Store operation; ``translate_error`` is the pure table, so
it can be tested with ClientErrors built by hand; ``translate_answer`` is its part for an
error answer (status, code, message), the same for botocore's requests and the hot path's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aiohttp
from botocore import exceptions as boto

from gateway.errors import (
    AccessDenied,
    BadRequest,
    Exists,
    GatewayError,
    NotFound,
    ObjectChanged,
    PreconditionFailed,
    Unavailable,
    Upstream,
)

_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchUpload", "NoSuchVersion"})
_PRECONDITION = frozenset({"PreconditionFailed", "412"})
# fmt: off
_DENIED = frozenset({
    "AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
    "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem",
})
_BUSY = frozenset({  # and any other 5xx
    "SlowDown", "Throttling", "ThrottlingException", "RequestThrottled", "TooManyRequests",
    "RequestTimeout", "ServiceUnavailable", "InternalError", "500", "502", "503", "504",
})
# fmt: on
# Operations that create an object: a failed If-None-Match means "it already exists".
_CREATES = frozenset({"put", "complete_upload"})
# Failures to reach the store or to keep talking to it (mid-stream included).
_UNREACHABLE: tuple[type[BaseException], ...] = (
    boto.ConnectionError,  # EndpointConnectionError, ConnectTimeoutError, SSLError, proxy
    boto.HTTPClientError,  # ReadTimeoutError, ConnectionClosedError, ResponseStreamingError
    boto.IncompleteReadError,  # the body ended before its Content-Length
    aiohttp.ClientError,
    TimeoutError,  # asyncio.TimeoutError is the same class on 3.11
    ConnectionError,
)


def error_code(error: boto.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code") or "")


def error_status(error: boto.ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def not_implemented(error: boto.ClientError) -> bool:
    return error_code(error) == "NotImplemented" or error_status(error) == 501


def translate_error(
    error: BaseException,
    *,
    op: str,
    bucket: str,
    where: str,
    key: str | None = None,
) -> GatewayError | None:
    """The domain error for a failure of operation ``op``; None if it is not a store error.

    ``where`` names the store in messages. A precondition failure means "the object
    changed" on reads and copies and "it already exists" on a conditional PUT or
    CompleteMultipartUpload (a copy tells the two apart itself: ``S3Store.copy``).
    """
    if isinstance(error, boto.ClientError):
        message = str(error.response.get("Error", {}).get("Message") or "")
        return translate_answer(error_status(error), error_code(error), message,
                                op=op, bucket=bucket, where=where, key=key)
    if isinstance(error, boto.NoCredentialsError | boto.PartialCredentialsError):
        return AccessDenied(
            f"no usable credentials for {where} in the AWS chain (env, profile, instance role)"
        )
    if isinstance(error, _UNREACHABLE):
        return Unavailable(f"cannot reach {where} ({type(error).__name__} on {op})")
    if isinstance(error, boto.BotoCoreError):
        return Upstream(f"{where} failed on {op}: {error}")
    return None


def translate_answer(
    status: int,
    code: str,
    message: str,
    *,
    op: str,
    bucket: str,
    where: str,
    key: str | None = None,
) -> GatewayError:
    """The domain error for an error answer of the store: its HTTP ``status``, S3 error
    ``code`` (empty when the answer had no body, as a HEAD's) and message. Whoever sent
    the request (botocore, or the hot path in ``s3fast.py``) ends here."""
    code = code or (str(status) if status else "unknown")
    target = f"{key!r}" if key is not None else f"bucket {bucket!r}"
    if code == "NoSuchBucket":
        return NotFound(f"bucket {bucket!r} does not exist at {where}")
    if code == "NoSuchUpload":
        return NotFound(f"no multipart upload for {target} (aborted or completed)")
    if code in ("MethodNotAllowed", "405") and op in ("get", "head"):
        # S3's answer to a GET or HEAD naming a delete marker's version id.
        return NotFound(f"{target}: that version is a delete marker")
    if code == "InvalidArgument" and "version" in message.lower():
        return BadRequest(f"no such version of {target} (invalid version id)")
    if code in _NOT_FOUND or (status == 404 and code not in _BUSY):
        return NotFound(f"no object {target}")
    if code in _PRECONDITION or status == 412:
        if op in _CREATES:
            return Exists(f"{target} already exists")
        if op in ("get", "head", "copy"):
            return ObjectChanged(f"{target} changed")
        return PreconditionFailed(f"precondition failed on {target}")
    if code == "ConditionalRequestConflict" and op in (*_CREATES, "copy"):
        # S3's 409 while another conditional write of the key is under way: that one
        # creates it, this one does not.
        return Exists(f"{target} is being created by someone else")
    if code in _DENIED or status == 403:
        return AccessDenied(
            f"{where} refused the gateway's credentials ({code} on {op} {target})"
        )
    if code == "NotImplemented":
        return Upstream(f"{where} does not implement {op} (NotImplemented)")
    if code in _BUSY or status >= 500:
        return Unavailable(f"{where} is unavailable ({code} on {op}); try again later")
    detail = f": {message}" if message else ""
    return Upstream(f"{where} answered {code} to {op} {target}{detail}")


@contextlib.contextmanager
def translating(op: str, *, bucket: str, where: str, key: str | None = None) -> Iterator[None]:
    """Raise the domain error for whatever store failure the block raises."""
    try:
        yield
    except GatewayError:
        raise
    except Exception as e:
        translated = translate_error(e, op=op, bucket=bucket, where=where, key=key)
        if translated is None:
            raise
        raise translated from e
