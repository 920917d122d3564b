"""Limits: every refusal is a short 4xx/503 and nothing partial is committed.

Served in-process exactly as ``bucketdav serve`` serves (same runner options, the same
guarded listener), over MemoryStores that show what reached the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import cast

import pytest
from aiohttp import ClientSession
from aiohttp.streams import StreamReader

from gateway.ops.clients import address_key
from gateway.ops.limits import LIMITS, BodyWatch
from gateway.settings import LimitSettings
from tests.apps import memory_app, parse_reply, raw_request, serving


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def chunks(*parts: bytes, gate: asyncio.Event | None = None) -> AsyncIterator[bytes]:
    """A chunked request body; with ``gate``, the last part waits until it is set."""
    for i, part in enumerate(parts):
        if gate is not None and i == len(parts) - 1:
            await gate.wait()
        yield part


class TestRequestHead:
    async def test_an_oversized_header_line_is_400(self) -> None:
        built = memory_app(limits=LimitSettings(max_header_bytes=1024))
        async with serving(built.app) as url:
            reply = await raw_request(url, "GET", "/", {"X-Big": "a" * 2000})
        assert reply.status == 400
        assert reply.body.startswith(b"Got more than 1024 bytes")

    async def test_too_many_headers_is_400(self) -> None:
        built = memory_app(limits=LimitSettings(max_headers=20))
        headers = {f"X-H{i}": "v" for i in range(40)}
        async with serving(built.app) as url:
            reply = await raw_request(url, "GET", "/", headers)
        assert reply.status == 400

    async def test_a_long_url_is_400(self) -> None:
        """aiohttp's parser answers an over-long request line itself, with 400 (not 414)."""
        built = memory_app(limits=LimitSettings(max_url_bytes=1000))
        async with serving(built.app) as url:
            reply = await raw_request(url, "GET", "/" + "a" * 3000)
        assert reply.status == 400


class TestUploadSize:
    async def test_a_declared_size_over_the_limit_is_413_before_reading(self) -> None:
        built = memory_app(limits=LimitSettings(max_upload_size=1000))
        store = built.stores["/"]
        async with serving(built.app) as url:
            reply = await raw_request(url, "PUT", "/big.bin", body=b"x" * 5000)
        assert reply.status == 413
        assert b"--max-upload-size" in reply.body
        assert store.objects == {} and store.calls["create_upload"] == 0

    async def test_finders_expected_entity_length_is_checked_too(self) -> None:
        built = memory_app(limits=LimitSettings(max_upload_size=1000))
        async with serving(built.app) as url, ClientSession() as session, session.put(
            url + "/finder.bin", data=chunks(b"x" * 10),
            headers={"X-Expected-Entity-Length": "5000"},
        ) as resp:
            assert resp.status == 413
        assert built.stores["/"].objects == {}

    async def test_a_chunked_body_passing_the_limit_is_stopped_and_not_committed(self) -> None:
        built = memory_app(limits=LimitSettings(max_upload_size=100_000))
        store = built.stores["/"]
        async with serving(built.app) as url, ClientSession() as session:
            body = chunks(*[b"y" * 30_000] * 5)
            async with session.put(url + "/chunked.bin", data=body) as resp:
                assert resp.status == 413
                assert b"--max-upload-size" in await resp.read()
        assert "chunked.bin" not in store.objects
        assert store.uploads == {}  # no multipart upload left open

    async def test_a_body_within_the_limit_is_stored(self) -> None:
        built = memory_app(limits=LimitSettings(max_upload_size=100_000))
        async with serving(built.app) as url, ClientSession() as session, session.put(
            url + "/ok.bin", data=chunks(b"z" * 50_000)
        ) as resp:
            assert resp.status == 201
        assert built.stores["/"].objects["ok.bin"].info.size == 50_000


class TestXmlBodies:
    async def test_a_declared_xml_body_over_the_limit_is_413(self) -> None:
        built = memory_app(limits=LimitSettings(max_xml_bytes=1000))
        async with serving(built.app) as url:
            reply = await raw_request(url, "PROPFIND", "/", {"Depth": "0"}, b" " * 5000)
        assert reply.status == 413
        assert b"--max-xml-bytes" in reply.body

    async def test_a_chunked_xml_body_over_the_limit_is_413(self) -> None:
        built = memory_app(limits=LimitSettings(max_xml_bytes=1000))
        async with serving(built.app) as url, ClientSession() as session, session.request(
            "PROPFIND", url + "/", data=chunks(*[b" " * 600] * 4), headers={"Depth": "0"}
        ) as resp:
            assert resp.status == 413


class TestConcurrency:
    async def test_uploads_past_the_limit_get_503_with_retry_after(self) -> None:
        built = memory_app(limits=LimitSettings(max_uploads=1))
        limits = built.app[LIMITS]
        gate = asyncio.Event()
        async with serving(built.app) as url, ClientSession() as session:
            first = asyncio.ensure_future(
                session.put(url + "/first.bin", data=chunks(b"a" * 1000, b"b", gate=gate))
            )
            for _ in range(200):  # until the first upload is being received
                if limits.uploads:
                    break
                await asyncio.sleep(0.01)
            assert limits.uploads == 1
            async with session.put(url + "/second.bin", data=b"c") as resp:
                assert resp.status == 503
                assert resp.headers["Retry-After"] == "5"
                assert await resp.text() == (
                    "too many uploads in progress (--max-uploads 1): retry later\n")
            gate.set()
            async with await first as resp:
                assert resp.status == 201
        assert limits.uploads == 0
        assert "second.bin" not in built.stores["/"].objects

    async def test_connections_past_the_limit_get_503_and_are_closed(self) -> None:
        built = memory_app(limits=LimitSettings(max_client_connections=2))
        async with serving(built.app) as url:
            held = [await connect(url) for _ in range(2)]
            limits = built.app[LIMITS]
            for _ in range(200):
                if len(limits.connections) == 2:
                    break
                await asyncio.sleep(0.01)
            reader, writer = await connect(url)
            reply = parse_reply(await asyncio.wait_for(reader.read(), 10))
            writer.close()
            assert reply.status == 503
            assert reply.body == (
                b"too many connections to this server (--max-client-connections): retry later\n")
            assert limits.refused_connections == 1
            for _, w in held:
                w.close()
            for _ in range(200):  # the slots free up once the server sees the closes
                if not limits.connections:
                    break
                await asyncio.sleep(0.01)
            assert (await raw_request(url, "OPTIONS", "/")).status == 200


class TestSlowClients:
    async def test_a_client_that_stops_sending_its_body_is_cut_off(self) -> None:
        built = memory_app(limits=LimitSettings(client_timeout=0.3))
        async with serving(built.app) as url:
            reader, writer = await connect(url)
            writer.write(b"PUT /slow.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
            writer.write(b"x" * 10)
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 20)  # then silence
            writer.close()
        reply = parse_reply(data)
        assert reply.status == 408
        assert b"--client-timeout" in reply.body
        assert built.stores["/"].objects == {}

    @pytest.mark.parametrize("idle", [b"", b"GET / HTTP/1.1\r\nHost: x\r\n"])
    async def test_idle_connections_and_unfinished_heads_are_closed(self, idle: bytes) -> None:
        built = memory_app(limits=LimitSettings(keepalive_timeout=0.3))
        async with serving(built.app) as url:
            reader, writer = await connect(url)
            writer.write(idle)
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 20)
            writer.close()
        assert data == b""  # closed by the server, without an answer


class TestExpectContinue:
    async def head_then_first_reply(self, url: str, head: str) -> bytes:
        reader, writer = await connect(url)
        writer.write(head.encode())
        await writer.drain()
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        writer.close()
        return first

    async def test_an_upload_too_large_is_refused_before_100_continue(self) -> None:
        built = memory_app(limits=LimitSettings(max_upload_size=1000))
        async with serving(built.app) as url:
            first = await self.head_then_first_reply(
                url, "PUT /big.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
                     "Expect: 100-continue\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 413 ")
        assert b"Connection: close" in first

    async def test_an_acceptable_upload_gets_100_continue(self) -> None:
        built = memory_app(limits=LimitSettings(max_upload_size=1000))
        async with serving(built.app) as url:
            reader, writer = await connect(url)
            writer.write(b"PUT /ok.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                         b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
            await writer.drain()
            assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20) == (
                b"HTTP/1.1 100 Continue\r\n\r\n")
            writer.write(b"hello")
            reply = parse_reply(await asyncio.wait_for(reader.read(), 20))
            writer.close()
        assert reply.status == 201
        assert built.stores["/"].objects["ok.bin"].data == b"hello"


class TestPerClient:
    def test_clients_are_told_apart_by_ipv4_address_or_ipv6_64(self) -> None:
        assert address_key("192.0.2.7") == address_key("::ffff:192.0.2.7") == "192.0.2.7"
        assert address_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
        assert address_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
        assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
        assert address_key(None) == "?"

    def test_a_body_is_judged_window_by_window(self) -> None:
        content = SimpleNamespace(total_bytes=0)
        watch = BodyWatch(cast(StreamReader, content), None, "--max-upload-size")
        watch.restart_window(0.0)
        content.total_bytes = 10_000
        assert watch.too_slow(0.5, 1000, 1.0) is None  # within the grace period
        assert watch.too_slow(1.0, 1000, 1.0) is None  # fast enough: a new window starts
        content.total_bytes = 10_500  # the next window brings 500 bytes in 1 s
        assert watch.too_slow(2.0, 1000, 1.0) == 500
        assert watch.too_slow(2.0, 0, 1.0) is None  # 0: no minimum

    async def test_uploads_of_one_address_past_its_share_get_429(self) -> None:
        built = memory_app(limits=LimitSettings(max_uploads=4, max_uploads_per_client=1))
        limits = built.app[LIMITS]
        gate = asyncio.Event()
        async with serving(built.app) as url, ClientSession() as session:
            first = asyncio.ensure_future(
                session.put(url + "/first.bin", data=chunks(b"a" * 1000, b"b", gate=gate))
            )
            for _ in range(200):
                if limits.uploads:
                    break
                await asyncio.sleep(0.01)
            async with session.put(url + "/second.bin", data=b"c") as resp:
                assert resp.status == 429
                assert resp.headers["Retry-After"] == "5"
                assert "--max-uploads-per-client 1" in await resp.text()
            gate.set()
            async with await first as resp:
                assert resp.status == 201
        assert limits.uploads_by_client == {}

    async def test_a_head_not_complete_in_time_gets_408_and_is_closed(self) -> None:
        built = memory_app(limits=LimitSettings(header_timeout=0.3))
        async with serving(built.app) as url:
            reader, writer = await connect(url)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 20)
            writer.close()
        reply = parse_reply(data)
        assert reply.status == 408
        assert b"--header-timeout" in reply.body
        assert built.app[LIMITS].per_address == {}

    async def test_an_idle_connection_between_requests_is_not_a_late_head(self) -> None:
        built = memory_app(limits=LimitSettings(header_timeout=0.3))
        head = b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n"
        async with serving(built.app) as url:
            reader, writer = await connect(url)
            for extra in (b"\r\n", b""):  # a stray CRLF after a request starts no head
                writer.write(head)
                first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
                assert first.startswith(b"HTTP/1.1 200 ")
                writer.write(extra)
                await asyncio.sleep(0.8)  # idle: --keepalive-timeout's business
            writer.write(head)
            assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)).startswith(
                b"HTTP/1.1 200 ")
            writer.close()

