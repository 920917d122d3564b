"""What a share's Policy allows: pure decisions, each returning the refusal or None.

A refusal is the one-line message the client sees (with a 403): it says what was refused
and names the flag that would allow it. Default mode mirrors Mountpoint for Amazon S3:
new objects may be created, nothing is replaced, deleted or renamed, except the
placeholder rules that make OS copy-in work (a zero-byte object may be replaced; an object
created under a lock may be rewritten by PUTs carrying that lock's token until UNLOCK).
"""

from __future__ import annotations

from gateway.settings import Policy
from gateway.storage.asof import as_of_refusal

READ_ONLY = "this share is read-only (bucketdav was started with --read-only)"
OVERWRITE = (
    "overwriting an existing object is not allowed on this share "
    "(start bucketdav with --allow-overwrite)"
)
DELETE = "deleting is not allowed on this share (start bucketdav with --allow-delete)"
DELETE_TARGET = (
    "replacing an existing collection deletes it, and deleting is not allowed on this "
    "share (start bucketdav with --allow-delete)"
)
RENAME_FILE = (
    "renaming an object with data is a server-side copy and a delete (not atomic) and is "
    "not allowed on this share (start bucketdav with --allow-rename)"
)
RENAME_TREE = (
    "renaming a collection that is not empty copies and deletes every object in it "
    "(not atomic) and is not allowed on this share (start bucketdav with --allow-rename)"
)


def may_write(policy: Policy) -> str | None:
    """Any change at all (PUT, MKCOL, COPY, MOVE, DELETE, LOCK)."""
    if policy.as_of is not None:  # the past cannot be changed
        return as_of_refusal(policy.as_of)
    return READ_ONLY if policy.read_only else None


def may_create(policy: Policy) -> str | None:
    """A new object or collection where nothing exists."""
    return may_write(policy)


def may_overwrite(policy: Policy, existing_size: int, created_under_lock: bool) -> str | None:
    """Replace an existing object of ``existing_size`` bytes (PUT, or COPY/MOVE onto it).

    Placeholders may always be replaced: a zero-byte object (what Finder and Windows
    write before the data), or one created under a lock whose token the request carries.
    """
    if policy.read_only or policy.as_of is not None:
        return may_write(policy)
    if policy.allow_overwrite or existing_size == 0 or created_under_lock:
        return None
    return OVERWRITE


def may_delete(policy: Policy) -> str | None:
    """DELETE of an object or a collection (recursive)."""
    if policy.read_only or policy.as_of is not None:
        return may_write(policy)
    return None if policy.allow_delete else DELETE


def may_replace_collection(policy: Policy) -> str | None:
    """COPY/MOVE with ``Overwrite: T`` onto an existing collection: it is deleted first."""
    if policy.read_only or policy.as_of is not None:
        return may_write(policy)
    return None if policy.allow_delete else DELETE_TARGET


def may_rename(policy: Policy, is_dir: bool, empty: bool) -> str | None:
    """MOVE of the source. Empty things (a zero-byte object, a collection holding at most
    its own marker) move in O(1) without copying data, so they are always allowed."""
    if policy.read_only or policy.as_of is not None:
        return may_write(policy)
    if empty or policy.allow_rename:
        return None
    return RENAME_TREE if is_dir else RENAME_FILE
