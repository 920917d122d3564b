"""Quota (RFC 4331): the properties only on a share with a quota, from a background count
adjusted by the writes made through the gateway; an upload that would pass the quota is
507 before its body is read (no 100 Continue)."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.settings import Policy
from tests.apps import app_for, serving, share_of
from tests.memorystore import MemoryStore
from tests.webdav.davxml import D, multistatus, propfind_body

QUOTA_PROPS = propfind_body(D + "quota-available-bytes", D + "quota-used-bytes")
WITH_QUOTA = Policy(allow_overwrite=True, allow_delete=True, quota=1000)


def filled() -> MemoryStore:
    store = MemoryStore()
    store.put_sync("a.bin", b"a" * 200)
    store.put_sync("d/", b"")
    store.put_sync("d/b.bin", b"b" * 100)
    return store


async def quota_of(client: Any, path: str = "/") -> tuple[int | None, int | None]:
    resp = await client.request("PROPFIND", path, data=QUOTA_PROPS, headers={"Depth": "0"})
    assert resp.status == 207
    ok = next(iter(multistatus(await resp.read()).values())).ok()
    used = ok.get(D + "quota-used-bytes")
    available = ok.get(D + "quota-available-bytes")
    return (int(used.text or "") if used is not None else None,
            int(available.text or "") if available is not None else None)


async def started(aiohttp_client: Any, store: MemoryStore, policy: Policy = WITH_QUOTA
                  ) -> Any:
    app = app_for(store, policy=policy)
    client = await aiohttp_client(app)
    quota = share_of(app).quota
    assert quota is not None
    await asyncio.wait_for(quota.wait_scanned(), 10)
    return client


async def test_propfind_reports_the_counted_quota(aiohttp_client: Any) -> None:
    client = await started(aiohttp_client, filled())
    assert await quota_of(client) == (300, 700)
    assert await quota_of(client, "/d/") == (300, 700)  # the share's, on every collection
    # Not in allprop (RFC 4331), not on files.
    resp = await client.request("PROPFIND", "/", headers={"Depth": "1"})
    assert b"quota" not in await resp.read()
    assert await quota_of(client, "/a.bin") == (None, None)


async def test_writes_adjust_the_count_at_once(aiohttp_client: Any) -> None:
    store = filled()
    client = await started(aiohttp_client, store)
    assert (await client.put("/c.bin", data=b"c" * 150)).status == 201
    assert await quota_of(client) == (450, 550)
    assert (await client.put("/a.bin", data=b"a" * 50)).status == 204  # replaced: -150
    assert await quota_of(client) == (300, 700)
    assert (await client.delete("/c.bin")).status == 204
    assert await quota_of(client) == (150, 850)
    assert (await client.delete("/d/")).status == 204
    assert await quota_of(client) == (50, 950)
    quota = share_of(client.app).quota
    assert quota is not None and quota.scans == 1  # adjusted, not counted again


async def test_an_upload_past_the_quota_is_507_and_writes_nothing(aiohttp_client: Any
                                                                  ) -> None:
    store = filled()
    client = await started(aiohttp_client, store)
    resp = await client.put("/big.bin", data=b"x" * 701)
    assert resp.status == 507
    text = await resp.text()
    assert "quota is 1,000 bytes" in text and "300 bytes used" in text
    assert "big.bin" not in store.objects
    assert (await client.put("/fits.bin", data=b"x" * 700)).status == 201


async def test_a_refused_upload_gets_no_100_continue(aiohttp_client: Any) -> None:
    store = filled()
    app = app_for(store, policy=WITH_QUOTA)
    async with serving(app) as base:
        quota = share_of(app).quota
        assert quota is not None
        await asyncio.wait_for(quota.wait_scanned(), 10)
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"PUT /big.bin HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 5000\r\n"
            "Expect: 100-continue\r\n\r\n".encode()
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        await writer.wait_closed()
    assert status_line.split()[1] == b"507"  # not "100": the body is never asked for
    assert "big.bin" not in store.objects


async def test_no_quota_no_properties(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(filled()))
    assert await quota_of(client) == (None, None)
    resp = await client.request("PROPFIND", "/", data=QUOTA_PROPS, headers={"Depth": "0"})
    answer = next(iter(multistatus(await resp.read()).values()))
    assert answer.status_of(D + "quota-used-bytes") == 404
    assert share_of(client.app).quota is None


async def test_before_the_first_count_the_properties_are_left_out(aiohttp_client: Any
                                                                  ) -> None:
    client = await started(aiohttp_client, filled())
    quota = share_of(client.app).quota
    quota.used = None  # as before the first count ends
    assert await quota_of(client) == (None, None)
    # An upload larger than the whole quota is refused even then.
    assert (await client.put("/big.bin", data=b"x" * 1001)).status == 507
