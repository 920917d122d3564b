"""A store as it was at a point in time (the share option ``as_of``), read-only.

``AsOfStore`` wraps a store that keeps object versions (a versioned S3 bucket) and
answers ``head``, ``get`` and ``list_page`` from ``ListObjectVersions``: for each key the
newest version whose LastModified is at or before ``as_of`` is *the* object, a key whose
pick is a delete marker (or which has no version by then) does not exist. Every read of
an object names the picked version id, so a write made later, even one made while a read
is under way, never shows. Every write is refused with a message naming ``as_of``.

Cost. A folder listing is ``ListObjectVersions`` under the prefix with the delimiter: it
pages through every version and delete marker of the folder's keys, so a folder of keys
with many versions costs more pages than ``ListObjectsV2`` would (1000 versions a page).
The version picked for a key is remembered (history at or before ``as_of`` does not
change), so a GET after a listing costs no extra request; a HEAD of a key not listed yet
costs one ``ListObjectVersions`` (prefix = the key) and one ``HeadObject`` of the version.
A common prefix is shown when any version or delete marker lies under it, even if
nothing under it existed at ``as_of``: telling would cost one listing per folder.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import UTC, datetime

from gateway.errors import BadRequest, NotFound, NotSupported
from gateway.storage.base import (
    GetResult,
    ListPage,
    ObjectInfo,
    ObjectStore,
    ObjectVersion,
    VersionPage,
)
from gateway.storage.readonly import RefusedWrites

PINS = 100_000  # versions remembered by key: enough for a big folder, bounded memory


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{when.microsecond:06d}Z" if when.microsecond else "Z")


def as_of_refusal(as_of: datetime) -> str:
    """The one refusal of every write on an ``as_of`` share."""
    return (f"this share is read-only: it serves the bucket as it was at {rfc3339(as_of)} "
            "(the share's as_of setting)")


MAX_VERSIONS = 10_000  # most versions of one key read at once (a ?versions answer, an as_of pick)


async def versions_of(store: ObjectStore, key: str, limit: int = MAX_VERSIONS
                      ) -> list[ObjectVersion]:
    """The versions and delete markers of exactly ``key``, newest first (at most
    ``limit``). They come first in a listing of the prefix ``key``: every other key
    under that prefix sorts after it."""
    found: list[ObjectVersion] = []
    token: str | None = None
    while True:
        page = await store.list_versions(key, None, token, 1000)
        for version in page.versions:
            if version.key != key:
                return found
            found.append(version)
            if len(found) >= limit:
                return found
        token = page.next_token
        if token is None:
            return found


class AsOfStore(RefusedWrites):
    """``store`` as it was at ``as_of`` (timezone-aware); open with ``check()``. Every
    write is refused (``RefusedWrites``) with ``refusal``."""

    def __init__(self, store: ObjectStore, as_of: datetime) -> None:
        self.store = store
        self.as_of = as_of
        self._pins: OrderedDict[str, ObjectVersion | None] = OrderedDict()

    @property
    def description(self) -> str:
        return f"{self.store.description} as of {rfc3339(self.as_of)}"

    @property
    def refusal(self) -> str:
        return as_of_refusal(self.as_of)

    async def check(self) -> None:
        """The store answers, keeps versions, and ``as_of`` is not in the future (where
        writes made after startup would show)."""
        if self.as_of > datetime.now(UTC):
            raise BadRequest(f"as_of {rfc3339(self.as_of)} is in the future: give a past time")
        await self.store.check()
        try:
            await self.store.list_versions("", None, None, 1)
        except NotSupported as e:
            raise NotSupported(f"as_of needs object versions: {e.message}") from None

    # ---- picking the version of a key ---------------------------------------------------
    def _pick_of(self, versions: list[ObjectVersion]) -> ObjectVersion | None:
        """The newest at or before ``as_of``; None when that is a delete marker."""
        for version in versions:  # newest first
            if version.last_modified <= self.as_of:
                return None if version.deleted else version
        return None

    def _remember(self, key: str, version: ObjectVersion | None) -> None:
        self._pins[key] = version
        self._pins.move_to_end(key)
        while len(self._pins) > PINS:
            self._pins.popitem(last=False)

    async def pick(self, key: str) -> ObjectVersion:
        """The version of ``key`` at ``as_of``; NotFound when it did not exist then."""
        if key in self._pins:
            self._pins.move_to_end(key)
            found = self._pins[key]
        else:
            found = self._pick_of(await versions_of(self.store, key))
            self._remember(key, found)
        if found is None:
            raise NotFound(f"no object {key!r} at {rfc3339(self.as_of)}")
        return found

    # ---- reads -----------------------------------------------------------------------
    async def head(self, key: str) -> ObjectInfo:
        version = await self.pick(key)
        return await self.store.head_version(key, version.version_id)

    async def get(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        if_match: str | None = None,
    ) -> GetResult:
        version = await self.pick(key)
        return await self.store.get_version(key, version.version_id, start, end, if_match)

    async def list_page(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        # The token carries the store's own and the last key already decided: a page of
        # versions can end in the middle of a key's versions.
        inner, decided = json.loads(token) if token else (None, None)
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        while True:
            page = await self.store.list_versions(prefix, delimiter, inner, max_keys)
            for version in page.versions:
                if version.key == decided or version.last_modified > self.as_of:
                    continue
                decided = version.key  # its newest version by then: the rest are older
                self._remember(version.key, None if version.deleted else version)
                if not version.deleted:
                    objects.append(ObjectInfo(version.key, version.size, version.etag,
                                              version.last_modified))
            prefixes.extend(page.prefixes)
            inner = page.next_token
            # A page of nothing but older versions says nothing: read on.
            if inner is None or objects or prefixes:
                break
        next_token = json.dumps([inner, decided]) if inner is not None else None
        return ListPage(tuple(objects), tuple(prefixes), next_token)

    async def head_version(self, key: str, version_id: str) -> ObjectInfo:
        return await self.store.head_version(key, version_id)

    async def get_version(
        self,
        key: str,
        version_id: str,
        start: int | None = None,
        end: int | None = None,
        if_match: str | None = None,
    ) -> GetResult:
        return await self.store.get_version(key, version_id, start, end, if_match)

    async def list_versions(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> VersionPage:
        """The versions up to ``as_of``: later ones did not exist yet."""
        page = await self.store.list_versions(prefix, delimiter, token, max_keys)
        kept = tuple(v for v in page.versions if v.last_modified <= self.as_of)
        return VersionPage(kept, page.prefixes, page.next_token)

    async def close(self) -> None:
        await self.store.close()


def as_of_store(store: ObjectStore, as_of: datetime | None) -> ObjectStore:
    """``store`` itself, or ``store`` as it was at ``as_of``."""
    if as_of is None:
        return store
    wrapped = AsOfStore(store, as_of)
    assert isinstance(wrapped, ObjectStore)  # every protocol member is there
    return wrapped
