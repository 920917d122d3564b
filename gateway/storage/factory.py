"""Build the store a share's source names. Opening does not talk to the store: the app
calls ``check()`` itself, so that it can report a bad bucket or credentials clearly."""

from __future__ import annotations

from gateway.settings import ShareSettings
from gateway.storage.base import ObjectStore
from gateway.storage.local import LocalStore
from gateway.storage.s3 import S3Store


async def open_store(share: ShareSettings) -> ObjectStore:
    source = share.source
    if source.scheme == "file":
        return LocalStore(source.bucket, create=True)
    return await S3Store.create(source.bucket, share.store, source.scheme)


def connection_limit(share: ShareSettings) -> int | None:
    """How many requests the share's store can serve at once: an object store's connection
    pool (``--max-connections``); None for a local folder, which has no pool (the
    engine's default applies)."""
    return None if share.source.scheme == "file" else share.store.max_connections
