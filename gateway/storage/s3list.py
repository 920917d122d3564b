"""ListObjectsV2 pages of one bucket, a directory listing's next page asked for as soon as
this page's bytes are in.

A big folder is listed page after page, each request waiting for the token of the one
before: the store's own paged LIST. The gateway used to send the next request only after
it had parsed the page, built its entries and looked up their times (5-10 ms a page of
1,000, twice that on a loaded machine), all on that critical path. Here the token is read
from the raw bytes (a plain search, no parse) and the next page's request leaves at once,
before this page is parsed; the page is then parsed while the store lists the next. The
read-ahead page waits, keyed by exactly the request it answers, for the caller that asks
for it (``Listing`` asks for the page after each one as it goes), for a few seconds at
most; one nobody takes is dropped.

Only directory listings (delimiter ``/``, pages of ``READ_AHEAD_MIN`` keys or more) read
ahead: a probe for one key, or a tree walk that acts on each page, asks for no page it
will not read. Requests the hot path does not take (it is off, or the store redirected)
go to botocore as before, without read-ahead.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from gateway.storage.base import ListPage, ObjectInfo
from gateway.storage.s3body import utc
from gateway.storage.s3fast import HotPath, list_query, list_response

PAGE_KEYS = 1000  # what a listing asks for after its first page
READ_AHEAD_MIN = 100  # smaller pages are probes: no read-ahead
FRESH_SECONDS = 5.0  # a page read ahead is served only this long after its request
KEPT = 8  # pages read ahead and not yet taken, at most (oldest dropped)
_TOKEN = re.compile(rb"<NextContinuationToken>([^<&]+)</NextContinuationToken>")
_TRUNCATED = re.compile(rb"<IsTruncated>\s*true\s*</IsTruncated>", re.IGNORECASE)

PageKey = tuple[str, str | None, str | None, int]  # prefix, delimiter, token, max keys


def next_token_of(body: bytes) -> str | None:
    """The continuation token of a truncated page, from its bytes; None when it has none
    or writes it with an entity (then the parsed page gives it, and nothing is read
    ahead)."""
    if _TRUNCATED.search(body) is None:
        return None
    found = _TOKEN.search(body)
    return found.group(1).decode() if found else None


def reads_ahead(key: PageKey) -> bool:
    _, delimiter, _, max_keys = key
    return delimiter == "/" and max_keys >= READ_AHEAD_MIN


def page_of(response: dict[str, Any]) -> ListPage:
    """A ListObjectsV2 answer in botocore's shape as a ``ListPage``."""
    objects = tuple(
        ObjectInfo(
            key=item["Key"],
            size=int(item.get("Size", 0)),
            etag=str(item.get("ETag", "")),
            last_modified=utc(item.get("LastModified")),
        )
        for item in response.get("Contents", ())
    )
    prefixes = tuple(p["Prefix"] for p in response.get("CommonPrefixes", ()))
    next_token = response.get("NextContinuationToken") if response.get("IsTruncated") else None
    return ListPage(objects, prefixes, next_token or None)


def _next(key: PageKey, token: str) -> PageKey:
    """The request for the page after the one ``key`` asked for: a full page."""
    return key[0], key[1], token, PAGE_KEYS


def _retrieved(task: asyncio.Future[Any]) -> None:
    """A page read ahead for nobody: its failure is nobody's either."""
    if not task.cancelled():
        task.exception()


@dataclass(slots=True)
class _Ahead:
    """A page read ahead: its request, and whether a caller has taken it yet. One not yet
    taken when its bytes come in keeps the next token instead of reading on, so a listing
    its reader gave up reads at most one page for nobody."""

    started: float
    task: asyncio.Task[ListPage] | None = None
    taken: bool = False
    token: str | None = None


class Lister:
    """ListObjectsV2 pages, read ahead as the module says."""

    def __init__(self, bucket: str, client: Any, hot: HotPath | None) -> None:
        self.bucket = bucket
        self.client = client
        self.hot = hot
        self._ahead: OrderedDict[PageKey, _Ahead] = OrderedDict()

    async def page(self, prefix: str, delimiter: str | None, token: str | None,
                   max_keys: int) -> ListPage:
        key = (prefix, delimiter or None, token or None, max_keys)
        ahead = self._ahead.pop(key, None)
        if ahead is not None and ahead.task is not None:
            if asyncio.get_running_loop().time() - ahead.started > FRESH_SECONDS:
                ahead.task.cancel()
            else:
                ahead.taken = True
                if ahead.token is not None:
                    self._read_ahead(_next(key, ahead.token))
                try:
                    return await ahead.task
                except Exception:  # asked again below, errors and all
                    pass
        return await self._fetch(key, None)

    def close(self) -> None:
        for ahead in self._ahead.values():
            if ahead.task is not None:
                ahead.task.cancel()
        self._ahead.clear()

    async def _fetch(self, key: PageKey, ahead: _Ahead | None) -> ListPage:
        body = await self._body(key) if self.hot is not None else None
        if body is None:
            return page_of(await self.client.list_objects_v2(**self._params(key)))
        token = next_token_of(body) if reads_ahead(key) else None
        if token is not None:
            if ahead is None or ahead.taken:
                self._read_ahead(_next(key, token))
                await asyncio.sleep(0)  # its request leaves now, before this page's parse
            else:
                ahead.token = token  # read on only once a caller takes this page
        return page_of(list_response(body))

    def _read_ahead(self, key: PageKey) -> None:
        if key in self._ahead:
            return
        ahead = _Ahead(asyncio.get_running_loop().time())
        ahead.task = asyncio.ensure_future(self._fetch(key, ahead))
        ahead.task.add_done_callback(_retrieved)
        self._ahead[key] = ahead
        while len(self._ahead) > KEPT:
            _, dropped = self._ahead.popitem(last=False)
            if dropped.task is not None:
                dropped.task.cancel()

    async def _body(self, key: PageKey) -> bytes | None:
        """The page's bytes through the hot path; None when botocore must take it."""
        assert self.hot is not None
        return await self.hot.list_body(list_query(*key))

    def _params(self, key: PageKey) -> dict[str, Any]:
        prefix, delimiter, token, max_keys = key
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if delimiter:
            params["Delimiter"] = delimiter
        if token:
            params["ContinuationToken"] = token
        return params
