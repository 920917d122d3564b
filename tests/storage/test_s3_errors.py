"""S3Store's error translation: the table itself, and real failures end to end.

moto does not check credentials, so the credential codes are covered twice: by the pure
``translate_error`` with ClientErrors built by hand, and for real against s3rver, which
does reject an unknown access key. Connection failures use a closed port; mid-stream
failures use a tiny raw HTTP server that misbehaves on purpose.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from botocore import exceptions as boto

from gateway.errors import (
    AccessDenied,
    Exists,
    GatewayError,
    NotFound,
    ObjectChanged,
    PreconditionFailed,
    Unavailable,
    Upstream,
)
from gateway.settings import SettingsError
from gateway.storage.s3 import S3Store
from gateway.storage.s3errors import translate_error
from tests.servers import free_port, moto_settings

WHERE = "s3://bkt"


def client_error(code: str, status: int, op: str = "GetObject", message: str = "") -> Any:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return boto.ClientError(response, op)


def translated(error: BaseException, op: str = "get", key: str | None = "k") -> GatewayError:
    result = translate_error(error, op=op, bucket="bkt", where=WHERE, key=key)
    assert result is not None
    return result


# ---- the table --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AccessDenied", 403),
        ("403", 403),  # HEAD: no body, only the status
        ("InvalidAccessKeyId", 403),
        ("SignatureDoesNotMatch", 403),
        ("ExpiredToken", 400),
    ],
)
def test_credential_refusals_are_access_denied(code: str, status: int) -> None:
    error = translated(client_error(code, status))
    assert type(error) is AccessDenied
    assert "refused the gateway's credentials" in error.message
    assert WHERE in error.message and code in error.message


@pytest.mark.parametrize(
    ("code", "status", "op", "kind"),
    [
        ("NoSuchKey", 404, "get", NotFound),
        ("404", 404, "head", NotFound),
        ("NotFound", 404, "head", NotFound),
        ("NoSuchUpload", 404, "complete_upload", NotFound),
        ("PreconditionFailed", 412, "get", ObjectChanged),
        ("412", 412, "head", ObjectChanged),
        ("PreconditionFailed", 412, "copy", ObjectChanged),
        ("PreconditionFailed", 412, "put", Exists),
        ("PreconditionFailed", 412, "complete_upload", Exists),  # If-None-Match: *
        ("ConditionalRequestConflict", 409, "put", Exists),  # another create under way
        ("ConditionalRequestConflict", 409, "complete_upload", Exists),
        ("ConditionalRequestConflict", 409, "copy", Exists),
        ("PreconditionFailed", 412, "delete", PreconditionFailed),
        ("SlowDown", 503, "get", Unavailable),
        ("ServiceUnavailable", 503, "put", Unavailable),
        ("InternalError", 500, "list", Unavailable),
        ("503", 503, "head", Unavailable),
        ("ThrottlingException", 400, "get", Unavailable),
        ("RequestTimeout", 400, "put", Unavailable),
        ("WeirdBackendThing", 502, "get", Unavailable),  # any 5xx
        ("InvalidArgument", 400, "get", Upstream),
        ("NotImplemented", 501, "list_uploads", Upstream),  # not "try again"
        ("MethodNotAllowed", 405, "abort_upload", Upstream),
    ],
)
def test_table(code: str, status: int, op: str, kind: type[GatewayError]) -> None:
    error = translated(client_error(code, status), op=op)
    assert type(error) is kind


def test_upstream_names_the_code() -> None:
    error = translated(client_error("InvalidArgument", 400, message="bad header"))
    assert type(error) is Upstream
    assert "InvalidArgument" in error.message and "bad header" in error.message


def test_no_such_bucket_names_the_bucket() -> None:
    error = translated(client_error("NoSuchBucket", 404))
    assert type(error) is NotFound
    assert "'bkt'" in error.message


@pytest.mark.parametrize(
    "failure",
    [
        boto.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        boto.ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
        boto.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
        boto.ConnectionClosedError(endpoint_url="http://127.0.0.1:1"),
        boto.ResponseStreamingError(error="reset"),
        boto.IncompleteReadError(actual_bytes=1, expected_bytes=2),
        aiohttp.ClientConnectionError("reset"),
        aiohttp.ClientPayloadError("short body"),
        TimeoutError(),
        ConnectionResetError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_connection_failures_are_unavailable(failure: BaseException) -> None:
    error = translated(failure)
    assert type(error) is Unavailable
    assert WHERE in error.message


def test_missing_credentials() -> None:
    error = translated(boto.NoCredentialsError())
    assert type(error) is AccessDenied
    assert "AWS chain" in error.message


def test_other_errors_are_not_store_errors() -> None:
    assert translate_error(ValueError("bug"), op="get", bucket="b", where=WHERE) is None
    assert translate_error(KeyError("bug"), op="get", bucket="b", where=WHERE) is None


# ---- real failures ----------------------------------------------------------------------


async def test_closed_port_is_unavailable_quickly() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with S3Store("bkt", moto_settings(endpoint)) as store:
        began = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            await store.check()
        assert time.monotonic() - began < 10  # connection refused, a few quick retries
        assert endpoint in caught.value.message
        assert "s3://bkt" in caught.value.message
        with pytest.raises(Unavailable):
            await store.get("key")


async def test_missing_bucket_is_not_found_naming_it(moto_server: str) -> None:
    async with S3Store("no-such-bucket-here", moto_settings(moto_server)) as store:
        with pytest.raises(NotFound) as caught:
            await store.check()
        assert "'no-such-bucket-here'" in caught.value.message
        assert moto_server in caught.value.message
        for call in (
            store.get("key"),
            store.list_page(""),
            store.put("key", b"data"),
        ):
            with pytest.raises(NotFound, match="no-such-bucket-here"):
                await call


async def test_unknown_access_key_is_access_denied(s3rver_bucket: tuple[str, str]) -> None:
    """s3rver knows only the key S3RVER: the env credentials (``testing``) are refused."""
    endpoint, bucket = s3rver_bucket
    settings = moto_settings(endpoint)  # no profile: credentials from the env variables
    async with S3Store(bucket, settings) as store:
        with pytest.raises(AccessDenied) as caught:
            await store.check()
        assert "refused the gateway's credentials" in caught.value.message
        assert endpoint in caught.value.message
        with pytest.raises(AccessDenied, match="InvalidAccessKeyId"):
            await store.get("key")


async def test_unknown_profile_is_a_settings_error() -> None:
    store = S3Store("bkt", moto_settings("http://127.0.0.1:9", profile="no-such-profile"))
    with pytest.raises(SettingsError, match="no-such-profile"):
        await store.open()


async def test_not_open_is_a_programming_error() -> None:
    store = S3Store("bkt", moto_settings("http://127.0.0.1:9"))
    with pytest.raises(RuntimeError, match="not open"):
        await store.head("key")


# ---- a misbehaving server ---------------------------------------------------------------

Serve = Callable[[bytes, bool], Awaitable[str]]


@pytest.fixture
async def raw_server() -> AsyncIterator[Serve]:
    """Start HTTP servers that answer every request with fixed bytes, then either close
    the connection or stall until the test ends."""
    servers: list[asyncio.Server] = []
    handlers: set[asyncio.Task[None]] = set()
    release = asyncio.Event()

    async def serve(answer: bytes, stall: bool) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
                await writer.drain()
                if stall:
                    await release.wait()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()
                handlers.discard(task)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield serve
    release.set()
    for server in servers:
        server.close()
        await server.wait_closed()
    for task in list(handlers):
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)


def object_head(length: int) -> bytes:
    return (
        "HTTP/1.1 200 OK\r\n"
        f"Content-Length: {length}\r\n"
        'ETag: "0123456789abcdef0123456789abcdef"\r\n'
        "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
        "Content-Type: application/octet-stream\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


async def test_body_cut_short_midstream_is_unavailable(raw_server: Serve) -> None:
    endpoint = await raw_server(object_head(100_000) + b"x" * 1000, False)
    async with S3Store("bkt", moto_settings(endpoint)) as store:
        result = await store.get("key")
        assert result.info.size == 100_000
        received = 0
        with pytest.raises(Unavailable):
            async for chunk in result.body:
                received += len(chunk)
        assert received <= 1000
        await result.aclose()


async def test_body_stalling_midstream_is_unavailable(raw_server: Serve) -> None:
    endpoint = await raw_server(object_head(100_000) + b"x" * 1000, True)
    store = S3Store("bkt", moto_settings(endpoint))
    store.preset = dataclasses.replace(
        store.preset, config={**store.preset.config, "read_timeout": 0.3}
    )
    async with store:
        result = await store.get("key", 0, 100_000)
        with pytest.raises(Unavailable):
            async for _ in result.body:
                pass
        await result.aclose()


async def test_slow_down_is_unavailable(raw_server: Serve) -> None:
    body = b"<Error><Code>SlowDown</Code><Message>Please reduce your rate</Message></Error>"
    answer = (
        "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    endpoint = await raw_server(answer, False)
    async with S3Store("bkt", moto_settings(endpoint)) as store:
        with pytest.raises(Unavailable, match="SlowDown"):
            await store.get("key")
