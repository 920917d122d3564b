"""ListObjectsV2 pages read ahead: the next page's request leaves as soon as this page's
bytes are in, is served to the caller that asks for it, and is never read on for nobody."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

import pytest

from gateway.storage import s3list
from gateway.storage.s3list import Lister, next_token_of

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def body(keys: list[str], token: str | None) -> bytes:
    items = "".join(f"<Contents><Key>{k}</Key><LastModified>2026-11-30T08:00:00.000Z"
                    f"</LastModified><ETag>&quot;e&quot;</ETag><Size>1</Size></Contents>"
                    for k in keys)
    more = f"<NextContinuationToken>{token}</NextContinuationToken>" if token else ""
    truncated = "true" if token else "false"
    return (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{NS}">'
            f"<IsTruncated>{truncated}</IsTruncated>{items}{more}</ListBucketResult>").encode()


class FakeHot:
    """A hot path over a folder of ``count`` keys in pages of the size asked for, the
    token being the index of the page's first key."""

    def __init__(self, count: int) -> None:
        self.keys = [f"d/{i:05}" for i in range(count)]
        self.sent: list[tuple[str | None, int]] = []

    async def list_body(self, query: str) -> bytes:
        asked = {k: v[0] for k, v in parse_qs(query).items()}
        token, size = asked.get("continuation-token"), int(asked["max-keys"])
        self.sent.append((token, size))
        start = int(token or 0)
        end = min(start + size, len(self.keys))
        await asyncio.sleep(0.001)
        return body(self.keys[start:end], str(end) if end < len(self.keys) else None)


async def read_all(lister: Lister, first_keys: int = 100) -> list[str]:
    keys: list[str] = []
    page = await lister.page("d/", "/", None, first_keys)
    keys += [o.key for o in page.objects]
    while page.next_token:
        page = await lister.page("d/", "/", page.next_token, 1000)
        keys += [o.key for o in page.objects]
    return keys


def test_the_token_is_read_from_the_bytes_of_a_truncated_page_only() -> None:
    assert next_token_of(body(["a"], "t+/=")) == "t+/="
    assert next_token_of(body(["a"], None)) is None
    # An entity in it: left to the parsed page, nothing read ahead.
    assert next_token_of(body(["a"], "a&amp;b")) is None


async def test_each_page_is_asked_for_once_and_before_the_page_before_it_is_returned(
) -> None:
    hot = FakeHot(2_500)
    lister = Lister("bucket", None, hot)  # type: ignore[arg-type]
    page = await lister.page("d/", "/", None, 100)
    # The caller has the first page: the second one's request has already left.
    assert hot.sent == [(None, 100), ("100", 1000)]
    assert len(page.objects) == 100
    rest = [o.key for o in (await lister.page("d/", "/", "100", 1000)).objects]
    assert rest[0] == "d/00100"
    assert hot.sent[-1] == ("1100", 1000)
    hot2 = FakeHot(2_500)
    assert await read_all(Lister("bucket", None, hot2)) == hot2.keys  # type: ignore[arg-type]
    assert hot2.sent == [(None, 100), ("100", 1000), ("1100", 1000), ("2100", 1000)]


async def test_a_listing_given_up_reads_at_most_one_page_for_nobody() -> None:
    hot = FakeHot(10_000)
    lister = Lister("bucket", None, hot)  # type: ignore[arg-type]
    await lister.page("d/", "/", None, 100)
    await asyncio.sleep(0.05)
    assert hot.sent == [(None, 100), ("100", 1000)]
    lister.close()


async def test_probes_and_tree_walks_read_nothing_ahead() -> None:
    hot = FakeHot(3_000)
    lister = Lister("bucket", None, hot)  # type: ignore[arg-type]
    await lister.page("d/", "/", None, 1)
    await lister.page("d/", None, None, 1000)
    await asyncio.sleep(0.05)
    assert hot.sent == [(None, 1), (None, 1000)]


async def test_a_stale_page_read_ahead_is_asked_for_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    hot = FakeHot(3_000)
    lister = Lister("bucket", None, hot)  # type: ignore[arg-type]
    await lister.page("d/", "/", None, 1000)
    await asyncio.sleep(0.05)
    monkeypatch.setattr(s3list, "FRESH_SECONDS", 0.0)
    page = await lister.page("d/", "/", "1000", 1000)
    assert page.objects[0].key == "d/01000"
    assert hot.sent.count(("1000", 1000)) == 2
    lister.close()


async def test_a_failed_page_read_ahead_is_asked_for_again() -> None:
    hot = FakeHot(3_000)
    lister = Lister("bucket", None, hot)  # type: ignore[arg-type]
    original = hot.list_body
    calls = 0

    async def failing_second(*args: Any) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionResetError("lost")
        return await original(*args)

    hot.list_body = failing_second  # type: ignore[method-assign, assignment]
    await lister.page("d/", "/", None, 1000)
    await asyncio.sleep(0.05)
    page = await lister.page("d/", "/", "1000", 1000)
    assert page.objects[0].key == "d/01000"
    assert calls == 4  # the first page, the failed read-ahead, asked again, the next
    lister.close()
