"""The hot requests (``s3fast.HotPath``): one retry layer for ranged GETs, botocore's
retries kept for HEAD and LIST, listings decoded and requests signed as botocore does.

A tiny raw HTTP server counts the requests that reach it and answers each with the same
bytes; moto stands in for a store with keys that need percent-encoding.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from gateway.errors import Unavailable
from gateway.storage.s3 import S3Store
from gateway.storage.s3fast import SigningKeys, amz_date, list_response, sign
from tests.servers import moto_settings

Serve = Callable[[bytes], Awaitable[tuple[str, list[bytes]]]]
SLOW_DOWN = b"<Error><Code>SlowDown</Code><Message>Please reduce your rate</Message></Error>"


def answer_503(body: bytes) -> bytes:
    return ("HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


@pytest.fixture
async def counting_server() -> AsyncIterator[Serve]:
    """Servers that answer every request with fixed bytes and keep each request head."""
    servers: list[asyncio.Server] = []

    async def serve(answer: bytes) -> tuple[str, list[bytes]]:
        heads: list[bytes] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                heads.append(head)
                # A HEAD's answer has no body, whatever its Content-Length says.
                bodiless = head.startswith(b"HEAD ")
                writer.write(answer.partition(b"\r\n\r\n")[0] + b"\r\n\r\n" if bodiless
                             else answer)
                await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", heads

    yield serve
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_a_failing_ranged_get_reaches_the_store_once(counting_server: Serve) -> None:
    """The engine retries a range with backoff and jitter: the store must not retry it too
    (botocore's three attempts under the engine's made one failing range cost up to 12)."""
    endpoint, heads = await counting_server(answer_503(SLOW_DOWN))
    async with S3Store("bkt", moto_settings(endpoint)) as store:
        with pytest.raises(Unavailable, match="SlowDown"):
            await store.get("key", 0, 4096, if_match='"abc"')
    assert len(heads) == 1
    head = heads[0].decode().lower()
    assert head.startswith("get /bkt/key ")
    assert "range: bytes=0-4095" in head and 'if-match: "abc"' in head


async def test_head_and_list_keep_botocores_retries(counting_server: Serve) -> None:
    endpoint, heads = await counting_server(answer_503(SLOW_DOWN))
    async with S3Store("bkt", moto_settings(endpoint)) as store:
        with pytest.raises(Unavailable):
            await store.head("key")
        assert len(heads) == 3
        with pytest.raises(Unavailable):
            await store.list_page("")
        assert len(heads) == 6


async def test_keys_that_need_encoding_round_trip(moto_bucket: tuple[str, str]) -> None:
    endpoint, bucket = moto_bucket
    names = ["a b+c.txt", "ümlaut/ß.txt", "50%/x", "q?&=#.txt", "tilde~/k"]
    async with S3Store(bucket, moto_settings(endpoint)) as store:
        for name in names:
            await store.put(name, name.encode())
        page = await store.list_page("", delimiter=None)
        assert sorted(o.key for o in page.objects) == sorted(names)
        top = await store.list_page("", delimiter="/")
        assert set(top.prefixes) == {"ümlaut/", "50%/", "tilde~/"}
        for name in names:
            assert (await store.head(name)).size == len(name.encode())
            result = await store.get(name, 1, 3)
            assert b"".join([c async for c in result.body]) == name.encode()[1:3]


def test_a_listing_page_is_parsed_and_decoded() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Name>b</Name><Prefix>d%2F</Prefix><EncodingType>url</EncodingType>
<IsTruncated>true</IsTruncated><NextContinuationToken>t+/=</NextContinuationToken>
<Contents><Key>d%2Fa+b.txt</Key><LastModified>2026-11-30T08:00:01.000Z</LastModified>
<ETag>&quot;e1&quot;</ETag><Size>12</Size></Contents>
<CommonPrefixes><Prefix>d%2Fsub%2F</Prefix></CommonPrefixes>
</ListBucketResult>"""
    page = list_response(body)
    (item,) = page["Contents"]
    assert item["Key"] == "d/a b.txt" and item["Size"] == 12 and item["ETag"] == '"e1"'
    assert item["LastModified"].isoformat() == "2026-11-30T08:00:01+00:00"
    assert page["CommonPrefixes"] == [{"Prefix": "d/sub/"}]
    assert page["IsTruncated"] and page["NextContinuationToken"] == "t+/="


@pytest.mark.parametrize("token", [None, "session-token"])
@pytest.mark.parametrize(("method", "path", "query", "extra"), [
    ("GET", "/bkt/a%20b/%C3%BC.txt", "", {"Range": "bytes=0-4095", "If-Match": '"e1"'}),
    ("HEAD", "/bkt/k", "versionId=v%2B1", {"x-amz-checksum-mode": "ENABLED",
                                           "x-amz-request-payer": "requester"}),
    ("GET", "/bkt", "continuation-token=t%2B%2F%3D&delimiter=%2F&encoding-type=url&"
     "list-type=2&max-keys=1000&prefix=d%20x%2F", {}),
])
def test_signatures_are_botocores(method: str, path: str, query: str, extra: dict[str, str],
                                  token: str | None) -> None:
    credentials = ReadOnlyCredentials("AKID", "secret/key+", token)
    when = datetime(2026, 11, 30, 8, 0, 1)
    headers = {"Host": "127.0.0.1:9000", **extra}
    sign(SigningKeys(), method, path, query, headers, credentials, "eu-west-3",
         when.strftime("%Y%m%dT%H%M%SZ"))
    url = f"http://127.0.0.1:9000{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url,
                         headers={"Host": "127.0.0.1:9000", **extra,
                                  "X-Amz-Content-SHA256": headers["X-Amz-Content-SHA256"]})
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        S3SigV4Auth(credentials, "s3", "eu-west-3").add_auth(request)
    assert headers["Authorization"] == request.headers["Authorization"]
    assert headers["X-Amz-Date"] == request.headers["X-Amz-Date"]
    assert headers.get("X-Amz-Security-Token") == request.headers.get("X-Amz-Security-Token")


async def test_both_paths_share_one_pool_of_max_connections(
    moto_bucket: tuple[str, str],
) -> None:
    """--max-connections bounds the store's connections, hot path and botocore together:
    the hot path sends on botocore's own session, whose connector has that limit."""
    endpoint, bucket = moto_bucket
    async with S3Store(bucket, moto_settings(endpoint, max_connections=2)) as store:
        await store.put("k", b"x" * 10_000)

        async def read() -> None:
            result = await store.get("k", 0, 5000)
            assert len(b"".join([c async for c in result.body])) == 5000

        await asyncio.gather(*(read() for _ in range(8)), store.head("k"),
                             store.list_page(""), store.put("other", b"y"))
        hot = store._fast
        assert hot is not None and hot.session is not None
        botocore = await store._s3._endpoint.http_session._get_session(None)
        assert hot.session is botocore
        assert hot.session.connector is not None and hot.session.connector.limit == 2


def test_amz_date_is_the_current_second_as_sigv4_writes_it() -> None:
    before = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    stamp = amz_date()
    after = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    assert before <= stamp <= after
    assert amz_date() >= stamp  # the cached second never goes back
