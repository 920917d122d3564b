"""Directory listings built from delimited store listings, streamed page by page.

Rules: common prefixes and ``name/`` marker objects are directories; an object and a
prefix of the same name (``a`` and ``a/x``) show once, as a directory; keys that are not
valid paths and client noise files are hidden. S3 lists in UTF-8 byte order, which is code
point order, so an object ``a`` can only be shadowed by a prefix ``a/`` arriving before
any key greater than ``a/``: pending files are held back only that long. Entries come out
in store order except for such held-back files, which follow the keys (``a-b``,
``a.txt``) that sort between ``a`` and ``a/``.

With key filters (``gateway.fs.filters``), a file is listed only if its key is visible,
and a directory only if the share finds a visible key under it (``dir_visible``: from its
name, or one bounded listing); a hidden directory shadows nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, Protocol
from urllib.parse import quote

from gateway.engine import Counters, StoreView
from gateway.fs.noise import is_client_noise
from gateway.fs.paths import DavPath, is_valid_name
from gateway.storage.base import ListPage, ObjectInfo


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    is_dir: bool
    size: int = 0
    last_modified: datetime | None = None
    etag: str | None = None
    content_type: str | None = None

    @classmethod
    def file(cls, name: str, info: ObjectInfo) -> Entry:
        return cls(name, False, info.size, info.last_modified, info.etag, info.content_type)


def _page_entries(prefix: str, objects: tuple[ObjectInfo, ...], prefixes: tuple[str, ...]
                  ) -> list[tuple[str, Entry]]:
    """One page as (sort key, entry) in store order; names relative to prefix."""
    items: list[tuple[str, Entry]] = []
    cut = len(prefix)
    for info in objects:
        key = info.key
        rest = key[cut:]
        if not rest:
            continue  # the directory's own marker
        if rest[-1] == "/":
            items.append((key, Entry(rest[:-1], True, 0, info.last_modified)))
        else:
            items.append((key, Entry(rest, False, info.size, info.last_modified, info.etag,
                                     info.content_type)))
    if prefixes:  # each list is sorted already: only a page with both needs merging
        items.extend((p, Entry(p[cut:-1], True)) for p in prefixes)
        items.sort(key=itemgetter(0))
    return items


async def shadow_and_filter(
    pages: AsyncIterator[tuple[tuple[ObjectInfo, ...], tuple[str, ...]]],
    prefix: str,
    show_noise: bool = False,
    counters: Counters | None = None,
    key_visible: Callable[[str], bool] | None = None,
    dir_visible: Callable[[str], Awaitable[bool]] | None = None,
) -> AsyncGenerator[list[Entry], None]:
    """The entries, a list per page: those the page made certain (a file waits while a
    later ``name/`` could still shadow it). Lists, not entries one by one, as a listing
    of 10,000 would otherwise pass each through every async layer above it."""
    pending: list[Entry] = []  # files that a later "name/" could still shadow
    last_dir: str | None = None
    last_key: str | None = None

    def visible(entry: Entry) -> bool:
        if not is_valid_name(entry.name):
            # Put there behind the gateway; counted so an operator learns they exist.
            if counters is not None:
                counters.invalid_keys_hidden += 1
            return False
        return show_noise or not is_client_noise(entry.name)

    async for objects, prefixes in pages:
        out: list[Entry] = []
        for sort_key, entry in _page_entries(prefix, objects, prefixes):
            if last_key is not None and (
                sort_key < last_key or (sort_key == last_key and not entry.is_dir)
            ):
                continue  # some stores (s3rver) repeat common prefixes on later pages
            last_key = sort_key
            if pending:
                # A file is safe once the listing has passed "name/". The ones still held
                # are all prefixes of sort_key, so pending stays short (a chain of
                # prefixes), even when thousands of keys like "a-1", "a-2" follow "a".
                ready = [p for p in pending if sort_key > prefix + p.name + "/"]
                if ready:
                    pending = [p for p in pending if sort_key <= prefix + p.name + "/"]
                    out += ready
            if entry.is_dir:
                if entry.name == last_dir:
                    continue  # a marker "a/" and the common prefix "a/"
                last_dir = entry.name
                if dir_visible is not None and not await dir_visible(prefix + entry.name
                                                                     + "/"):
                    continue  # made only of hidden keys: it does not exist
                pending = [p for p in pending if p.name != entry.name]
                if visible(entry):
                    out.append(entry)
                continue
            if key_visible is not None and not key_visible(sort_key):
                continue
            if visible(entry):
                pending.append(entry)
        if out:
            yield out
    if pending:
        yield pending


def _retrieved(task: asyncio.Future[Any]) -> None:
    """A page read ahead for nobody: its failure is nobody's either."""
    if not task.cancelled():
        task.exception()


FIRST_KEYS = 100  # the small first page ``Listing.exists`` reads


class Listing:
    """The entries of the directory at ``prefix`` (``shadow_and_filter``), read through the
    engine page by page, the next page asked for while the reader uses this one: a big
    folder takes about the store's own paged LIST. ``exists`` reads the first page early."""

    def __init__(
        self,
        view: StoreView,
        prefix: str,
        show_noise: bool = False,
        key_visible: Callable[[str], bool] | None = None,
        dir_visible: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self._view = view
        self._prefix = prefix
        self._filtered = key_visible is not None or dir_visible is not None
        self._first: ListPage | None = None
        self._runs = shadow_and_filter(self._pages(), prefix, show_noise,
                                       view.engine.counters, key_visible, dir_visible)
        self._entries = self._flat()

    async def exists(self) -> bool | None:
        """Whether anything lies under the prefix (a marker included), from the first page,
        which the listing then starts from: a directory's existence costs no request of its
        own. None under key filters: whether a visible key lies there is not on the page.

        That page is a small one (``FIRST_KEYS``): the answer, the status and the first
        entries come in the time the store takes to list a hundred keys, a fraction of a
        full page's (a folder of 10,000 on s3rver: 65 ms to the first byte instead of
        150), and the listing goes on from its token in full pages. The price: one more
        request, a round trip, for a folder of more than a hundred entries. Asking for the
        full first page alongside the small one, to save that round trip, was tried and
        measured: no gain in total on s3rver (it serves both at once, each slower), first
        byte about 100 ms instead of 55, and two LISTs for every small folder."""
        if self._filtered:
            return None
        if self._first is None:
            self._first = await self._view.list_page(self._prefix, None, FIRST_KEYS)
        return bool(self._first.objects or self._first.prefixes)

    def __aiter__(self) -> AsyncIterator[Entry]:
        return self._entries

    async def __anext__(self) -> Entry:
        return await anext(self._entries)

    def batches(self) -> AsyncIterator[list[Entry]]:
        """The entries in lists as the pages make them certain, for a caller that renders
        a batch at a time (instead of iterating this listing, not as well as)."""
        return self._runs

    async def aclose(self) -> None:
        await self._entries.aclose()
        await self._runs.aclose()

    async def _flat(self) -> AsyncGenerator[Entry, None]:
        async for run in self._runs:
            for entry in run:
                yield entry

    async def _pages(self) -> AsyncIterator[tuple[tuple[ObjectInfo, ...], tuple[str, ...]]]:
        view, prefix = self._view, self._prefix
        page, self._first = self._first or await view.list_page(prefix, None), None
        while True:
            ahead = None
            if page.next_token:
                ahead = asyncio.ensure_future(view.list_page(prefix, page.next_token))
                # Let it send its request now: the reader above renders and writes this
                # page without suspending, so the task would start only after all of it
                # (about 10 ms a page of 1,000 on the store's critical path).
                await asyncio.sleep(0)
            try:
                yield page.objects, page.prefixes
            except BaseException:  # the caller stopped early, or failed
                if ahead is not None:
                    ahead.cancel()
                    ahead.add_done_callback(_retrieved)
                raise
            if ahead is None:
                return
            page = await ahead


def member_href(base: str, entry: Entry) -> str:
    """The href of an entry of the directory whose href is ``base`` (``/``-ended), as
    ``Share.href`` writes it, without quoting the directory's path again per entry."""
    name = entry.name if _UNRESERVED.fullmatch(entry.name) else quote(entry.name, safe="")
    return base + name + ("/" if entry.is_dir else "")


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")  # what ``quote`` leaves as it is


list_dir = Listing  # "stream the entries of the directory at prefix"


class Directories(Protocol):
    """What ``open_dir`` needs of a share."""

    def listdir(self, path: DavPath) -> AsyncIterator[Entry]: ...

    async def is_dir(self, path: DavPath) -> bool: ...


async def open_dir(share: Directories, path: DavPath) -> AsyncIterator[Entry] | None:
    """The listing of the directory at ``path``, or None if there is none. Its first page
    says whether it exists: one store request instead of ``is_dir`` and then ``listdir``,
    unless key filters decide (then ``is_dir``). The root always exists."""
    entries = share.listdir(path)
    found = await entries.exists() if isinstance(entries, Listing) else None
    if found is None:
        found = await share.is_dir(path)
    return entries if found or path.is_root else None
