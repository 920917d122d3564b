"""HEAD results and listing pages in TTL caches, 404s included.

OS clients probe many names that never exist (``._*``, ``.DS_Store``, ``desktop.ini``);
negative entries answer them without a store request. Listing pages are indexed by
their prefix, so a write invalidates exactly the pages that could show the key (those
whose prefix is a prefix of the key) with one dictionary lookup per character of the key,
whatever the number of cached pages.

A TTL of 0 disables the cache: every question goes to the store.
"""

from __future__ import annotations

from cachetools import TTLCache

from gateway.storage.base import ListPage, ObjectInfo


class Missing:
    """The negative entry: the store said there is no such object."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()
PageKey = tuple[str, str | None, int]  # (prefix, continuation token, max keys)


class MetadataCache:
    def __init__(self, ttl: float, max_objects: int = 100_000, max_pages: int = 4096) -> None:
        self.enabled = ttl > 0
        ttl = max(ttl, 0.001)
        self._infos: TTLCache[str, ObjectInfo | Missing] = TTLCache(max_objects, ttl)
        self._pages: TTLCache[PageKey, ListPage] = TTLCache(max_pages, ttl)
        self._by_prefix: dict[str, set[PageKey]] = {}
        self._indexed = 0
        self._max_pages = max_pages

    # ---- objects -----------------------------------------------------------------------
    def info(self, key: str) -> ObjectInfo | Missing | None:
        """What is known about ``key``: its info, ``MISSING``, or None (ask the store)."""
        if not self.enabled:
            return None
        return self._infos.get(key)

    def put_info(self, info: ObjectInfo) -> None:
        if self.enabled:
            self._infos[info.key] = info

    def put_missing(self, key: str) -> None:
        if self.enabled:
            self._infos[key] = MISSING

    # ---- listings ----------------------------------------------------------------------
    def page(self, prefix: str, token: str | None, max_keys: int) -> ListPage | None:
        if not self.enabled:
            return None
        return self._pages.get((prefix, token, max_keys))

    def put_page(self, prefix: str, token: str | None, max_keys: int, page: ListPage) -> None:
        if not self.enabled:
            return
        key = (prefix, token, max_keys)
        self._pages[key] = page
        pages = self._by_prefix.setdefault(prefix, set())
        if key not in pages:
            pages.add(key)
            self._indexed += 1
        if self._indexed > 2 * self._max_pages:
            self._reindex()  # drop index entries of pages the TTL cache let go

    @property
    def indexed_pages(self) -> int:
        """Entries of the prefix index (bounded: at most twice the page cache's size)."""
        return self._indexed

    # ---- invalidation ----------------------------------------------------------------
    def invalidate(self, key: str) -> None:
        """Forget ``key`` and every cached listing page that could show it."""
        self._infos.pop(key, None)
        self.invalidate_listings(key)

    def invalidate_listings(self, key: str) -> None:
        for end in range(len(key) + 1):
            pages = self._by_prefix.pop(key[:end], None)
            if pages:
                self._indexed -= len(pages)
                for page_key in pages:
                    self._pages.pop(page_key, None)

    def invalidate_prefix(self, prefix: str) -> None:
        """Forget every key under ``prefix`` and every listing page that could show one
        (those of its ancestors and those under it). Costs a pass over the cache: it
        answers another process's tree operation, not every write."""
        for key in [k for k in self._infos if k.startswith(prefix)]:
            self._infos.pop(key, None)
        self.invalidate_listings(prefix)
        for page_prefix in [p for p in self._by_prefix if p.startswith(prefix)]:
            pages = self._by_prefix.pop(page_prefix)
            self._indexed -= len(pages)
            for page_key in pages:
                self._pages.pop(page_key, None)

    def clear(self) -> None:
        self._infos.clear()
        self._pages.clear()
        self._by_prefix.clear()
        self._indexed = 0

    def _reindex(self) -> None:
        self._pages.expire()
        self._by_prefix = {}
        for page_key in self._pages:
            self._by_prefix.setdefault(page_key[0], set()).add(page_key)
        self._indexed = len(self._pages)
