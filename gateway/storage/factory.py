"""Build the store a share's source names. Opening does not talk to the store: the app
calls ``check()`` itself, so that it can report a bad bucket or credentials clearly."""

from __future__ import annotations

from gateway.settings import SettingsError, ShareSettings, StoreSettings
from gateway.storage.base import ObjectStore
from gateway.storage.local import LocalStore
from gateway.storage.s3 import S3Store

# Options that ask an object store for something a local folder has no notion of.
_OBJECT_STORE_ONLY = ("sse", "sse_kms_key_id", "storage_class", "requester_pays",
                      "expected_bucket_owner", "user_project")


def _refuse_store_options(share: ShareSettings) -> None:
    default = StoreSettings()
    for name in _OBJECT_STORE_ONLY:
        if getattr(share.store, name) != getattr(default, name):
            flag = "--" + name.replace("_", "-")
            raise SettingsError(f"{flag} is for object stores: {share.source} is a local folder")


async def open_store(share: ShareSettings) -> ObjectStore:
    source = share.source
    if source.scheme == "file":
        _refuse_store_options(share)
        return LocalStore(source.bucket, create=True)
    return await S3Store.create(source.bucket, share.store, source.scheme)


def connection_limit(share: ShareSettings) -> int | None:
    """How many requests the share's store can serve at once: an object store's connection
    pool (``--max-connections``); None for a local folder, which has no pool (the
    engine's default applies)."""
    return None if share.source.scheme == "file" else share.store.max_connections
