"""The streaming upload writer: a request body becomes one object, visible only when whole.

A body that fits in one part is one PutObject. A larger one is a multipart upload: parts
are filled from the stream one at a time, each part's bytes reserved from the process-wide
memory budget before it is filled and released once the part is uploaded, with at most
``max_in_flight`` parts uploading at once. So one upload holds at most
``(max_in_flight + 1) * part_size`` bytes, whatever its size, and all uploads together
never hold more than the budget (a waiting upload stops reading, and TCP pushes back on
the client).

On any failure or cancellation (a client that disconnects cancels the handler) the
multipart upload is aborted: no partial object becomes visible and no parts are left
behind. The previous version of the key, if any, stays readable until the new one
completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Mapping

from gateway.engine.budget import MemoryBudget
from gateway.errors import BadRequest, Exists, GatewayError, NotFound, TooLarge
from gateway.storage.base import ObjectInfo, ObjectStore, UploadPart

log = logging.getLogger("bucketdav.upload")

MiB = 1024 * 1024
MAX_PARTS = 10_000  # S3's limit on parts per multipart upload
MAX_IN_FLIGHT = 4


class LengthMismatch(BadRequest):
    """The body is shorter or longer than the client announced: it is not committed."""


def announced_length(headers: Mapping[str, str], content_length: int | None) -> int | None:
    """The body length the client announced: ``X-Expected-Entity-Length`` (Finder sends it
    with chunked bodies) or ``Content-Length``; both present must agree (else 400)."""
    raw = headers.get("X-Expected-Entity-Length")
    if raw is None:
        return content_length
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()):  # isdigit alone admits "²", which int refuses
        raise BadRequest(f"X-Expected-Entity-Length must be a byte count, not {raw!r}")
    announced = int(raw)
    if content_length is not None and content_length != announced:
        raise BadRequest(
            f"Content-Length {content_length} and X-Expected-Entity-Length {announced} differ"
        )
    return announced


def check_length(total: int, expected: int | None, *, ended: bool) -> None:
    """Refuse a body of ``total`` bytes so far (the whole body when ``ended``) that cannot
    be of the ``expected`` length announced: past it at once, short of it at the end."""
    if expected is None:
        return
    if total > expected:
        raise LengthMismatch(
            f"the body is longer than the {expected} bytes announced; nothing was written"
        )
    if ended and total != expected:
        raise LengthMismatch(
            f"the body ended after {total} of the {expected} bytes announced; "
            "nothing was written"
        )


def choose_part_size(base: int, expected_size: int | None) -> int:
    """Grow the part size for known large bodies so they fit in MAX_PARTS parts."""
    if expected_size is None:
        return base
    return max(base, -(-expected_size // MAX_PARTS))


class BodyReader:
    """Cuts a stream of chunks into parts and checks the announced length."""

    def __init__(self, chunks: AsyncIterable[bytes], expected_size: int | None) -> None:
        self._chunks: AsyncIterator[bytes] = aiter(chunks)
        self._left = b""  # read from the stream but not yet handed out
        self.expected_size = expected_size
        self.total = 0
        self.eof = False

    async def _next(self) -> bytes:
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self.eof = True
            return b""
        self.total += len(chunk)
        check_length(self.total, self.expected_size, ended=False)
        return chunk

    async def read_part(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only at the end of the body."""
        pieces = [self._left] if self._left else []
        have = len(self._left)
        self._left = b""
        while have < size and not self.eof:
            chunk = await self._next()
            if chunk:
                pieces.append(chunk)
                have += len(chunk)
        if have > size:  # split only the last chunk, not the whole part
            last = pieces[-1]
            cut = len(last) - (have - size)
            pieces[-1], self._left = last[:cut], last[cut:]
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    async def at_end(self) -> bool:
        """True once the stream is exhausted (reads ahead at most one chunk)."""
        while not self._left and not self.eof:
            self._left = await self._next()
        return not self._left

    def check_complete(self) -> None:
        check_length(self.total, self.expected_size, ended=True)


async def write_stream(
    store: ObjectStore,
    budget: MemoryBudget,
    key: str,
    chunks: AsyncIterable[bytes],
    *,
    part_size: int,
    content_type: str | None = None,
    expected_size: int | None = None,
    create_only: bool = False,
    max_in_flight: int = MAX_IN_FLIGHT,
) -> ObjectInfo:
    """Write the whole stream to ``key``; the object appears only when complete.

    ``part_size``: the multipart part size for a body of unknown length.
    ``expected_size``: the announced length; a body of another length is not committed
    (LengthMismatch). ``create_only``: refuse (Exists) if the key exists when the object
    would be committed. Called through ``StoreView.write_stream``, which keeps the caches.
    """
    size = choose_part_size(part_size, expected_size)
    body = BodyReader(chunks, expected_size)
    # A small body of known length reserves only its length: many small PUTs at once
    # (a Finder copy of a folder) must not each hold a whole part of the budget. It can
    # never buffer more, since a body past its announced length fails at once.
    first_size = size if expected_size is None else min(size, expected_size)
    held = await budget.acquire(first_size)
    handed_over = False
    try:
        first = await body.read_part(size)
        if await body.at_end():
            body.check_complete()
            return await store.put(key, first, content_type, if_none_match=create_only)
        upload = _Multipart(store, budget, key, size, max_in_flight, first, held)
        handed_over = True  # from here the upload owns the part and its reservation
        del first  # the part must not stay referenced once it is uploaded
    finally:
        if not handed_over:
            budget.release(held)
    return await upload.run(body, content_type, create_only)


class _Multipart:
    def __init__(
        self,
        store: ObjectStore,
        budget: MemoryBudget,
        key: str,
        part_size: int,
        in_flight: int,
        first: bytes,
        held: int,
    ) -> None:
        self._first: bytes | None = first
        self._held = held  # bytes reserved for ``first``
        self.store = store
        self.budget = budget
        self.key = key
        self.part_size = part_size
        self.slots = asyncio.Semaphore(max(1, in_flight))
        self.tasks: list[asyncio.Task[UploadPart]] = []

    def _start(self, upload_id: str, number: int, data: bytes, held: int) -> None:
        task = asyncio.create_task(self.store.upload_part(self.key, upload_id, number, data))

        def done(_: asyncio.Task[UploadPart]) -> None:
            # A callback, not a finally: it also runs for a task cancelled before it started.
            self.budget.release(held)
            self.slots.release()

        task.add_done_callback(done)
        self.tasks.append(task)

    def _raise_failures(self) -> None:
        for task in self.tasks:
            if task.done() and not task.cancelled():
                error = task.exception()
                if error is not None:
                    raise error

    async def run(self, body: BodyReader, content_type: str | None, create_only: bool
                  ) -> ObjectInfo:
        """Upload the first part and the rest of ``body``; every reservation is released
        exactly once, by the part's task or here."""
        data, self._first = self._first, None
        held, self._held = self._held, 0
        upload_id: str | None = None
        try:
            upload_id = await self.store.create_upload(self.key, content_type)
            number = 0
            while True:
                number += 1
                if number > MAX_PARTS:
                    raise TooLarge(
                        f"the body needs more than {MAX_PARTS} parts of "
                        f"{self.part_size // MiB} MiB: send a Content-Length or start "
                        "bucketdav with a larger --write-part-size"
                    )
                await self.slots.acquire()
                assert data is not None
                self._start(upload_id, number, data, held)
                data, held = None, 0
                self._raise_failures()
                if await body.at_end():
                    break
                held = await self.budget.acquire(self.part_size)
                data = await body.read_part(self.part_size)
            body.check_complete()
            parts = list(await asyncio.gather(*self.tasks))
            if create_only:
                with contextlib.suppress(NotFound):
                    await self.store.head(self.key)
                    raise Exists(f"{self.key!r} was created by someone else meanwhile")
            return await self.store.complete_upload(self.key, upload_id, parts)
        except BaseException:
            if held:
                self.budget.release(held)
            await self._abort(upload_id)
            raise

    async def _abort(self, upload_id: str | None) -> None:
        for task in self.tasks:
            task.cancel()
        # Shielded: a cancelled handler must still clean up, and a second cancellation
        # must not stop the abort half-way.
        await asyncio.shield(self._cleanup(upload_id))

    async def _cleanup(self, upload_id: str | None) -> None:
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if upload_id is None:
            return
        try:
            await self.store.abort_upload(self.key, upload_id)
        except GatewayError as exc:
            log.warning("could not abort the upload of %r (%s): %s", self.key, upload_id,
                        exc.message)
