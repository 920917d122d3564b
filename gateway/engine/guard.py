"""Write guards: one creator of a new name at a time.

A create in default mode must not replace what another client created meanwhile. The store
decides it where it can: ``If-None-Match: *`` on PutObject, CompleteMultipartUpload and
CopyObject, a no-replace link on a local folder. Not every store enforces the header (s3rver
ignores it everywhere, moto on CopyObject), so those stores look first (a HEAD), and a look is
only safe if no other creator of that name can commit between the look and the write. The
guard makes that so inside the process: creators of one name commit one after the other, and
each one's look sees what the one before it made.

It is held only around the commit (the look and the one request that makes the object
visible), never while a body streams: a slow upload never holds up another one's body. A
creator that finds the name held waits for the commit in progress rather than failing, so a
commit that fails (the store refused it, the client went away) does not turn the other
creator away.

``WriteGuard`` is the protocol the engine uses; ``ProcessWriteGuard`` is the in-process one.
A guard shared by several processes (DESIGN.md, "Shared state") is the same ``guard(scope,
key)`` context manager over the state store (``StateStore.guard`` has this shape):
``Engine.use_state`` holds it after the process's own when the state store is shared.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol


class WriteGuard(Protocol):
    def guard(self, scope: str, key: str) -> AbstractAsyncContextManager[None]:
        """Held by one caller at a time for ``key`` in ``scope`` (a store): around the
        commit of a create."""
        ...


@dataclass
class _Name:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # holders and waiters: the entry goes when the last one leaves


class ProcessWriteGuard:
    """One asyncio lock per name being created, kept only while someone holds or awaits it."""

    def __init__(self) -> None:
        self._names: dict[tuple[str, str], _Name] = {}

    @property
    def held(self) -> int:
        """Names with a create committing or waiting (0 at rest: nothing is kept)."""
        return len(self._names)

    @asynccontextmanager
    async def guard(self, scope: str, key: str) -> AsyncIterator[None]:
        name = (scope, key)
        entry = self._names.get(name)
        if entry is None:
            entry = self._names[name] = _Name()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._names[name]
