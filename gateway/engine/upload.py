"""The streaming upload writer: a request body becomes one object, visible only when whole.

A body that fits in one part is one PutObject. A larger one is a multipart upload: parts
are filled from the stream one at a time, each into one buffer whose bytes are reserved
from the process-wide memory budget before it is filled and released once the part is
uploaded, with at most ``max_in_flight`` parts uploading at once. So one upload holds at
most ``(max_in_flight + 1) * (part_size + CHUNK)`` bytes, whatever its size, and all
uploads together never hold more than the budget (a waiting upload stops reading, and TCP
pushes back on the client).

The part size obeys the store (``StoreLimits``) and the budget, whatever length a client
announces (``choose_part_size``): a length past the store's largest object, or one whose
smallest legal part the budget cannot hold, is refused (413) before a byte of the body
is read, so before ``100 Continue``.

A body announced longer than one part is a multipart upload for sure: the upload is
created (CreateMultipartUpload) as soon as its first bytes arrive, while the first part
fills, not after.

On any failure or cancellation (a client that disconnects makes the body read fail) the
multipart upload is aborted: no partial object becomes visible and no parts are left
behind. The previous version of the key, if any, stays readable until the new one
completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass

from gateway.engine.budget import MemoryBudget, target_for
from gateway.errors import BadRequest, GatewayError, TooLarge
from gateway.storage.base import ObjectInfo, ObjectStore, UploadPart

log = logging.getLogger("bucketdav.upload")

MiB = 1024 * 1024
GiB = 1024 * MiB
TiB = 1024 * GiB
# Parts uploading at once. Each store connection carries only so much (about 50 MB/s to
# a store across a network, 20 ms per request), so parts in flight add up: 12 parts of
# 8 MiB keep 12 connections busy for 107 MiB of buffers, within the budget as every part
# is. On the benchmark's shaped store (2 cores), a 1 GiB PUT went at 171 MB/s with 8 in
# flight, 184 with 12 and 178 with 16 (the store's and the proxy's CPU the limit there).
MAX_IN_FLIGHT = 12
# A large body (``LARGE_BODY_PARTS`` base parts or more) goes in parts twice the base
# size when the budget holds a whole upload of them (``grown_part``): each part costs a
# request's round trip and its signing besides its bytes. At 1 GiB on the benchmark's
# shaped store, 16 MiB parts were about 4% faster than 8 MiB (32 MiB: slower again, its
# last wave of parts leaving more connections idle).
LARGE_BODY_PARTS = 64
# The most a producer hands over at once (the PUT handler reads the body this much at a
# time). A part's reservation counts one chunk beside its buffer: the piece in hand, read
# ahead or the rest of one split across the part's end, so none waits outside the budget.
CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """What one object may be on the store. S3's numbers; R2 and GCS have the same, and
    the local folder is held to them too, so a share behaves alike on every store."""

    max_object: int = 5 * TiB
    max_part: int = 5 * GiB  # also the largest single PutObject
    min_part: int = 5 * MiB  # every part but the last
    max_parts: int = 10_000


S3_LIMITS = StoreLimits()


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


def _mib(n: int) -> str:
    return f"{-(-n // MiB):,} MiB"


def refuse_oversize(expected: int | None, limits: StoreLimits = S3_LIMITS) -> None:
    """TooLarge if the announced length is more than the store can hold in one object."""
    if expected is not None and expected > limits.max_object:
        raise TooLarge(
            f"the announced body of {expected:,} bytes is larger than the store's maximum "
            f"object size ({limits.max_object // TiB} TiB); nothing was written"
        )


def smallest_part(expected: int | None, limits: StoreLimits = S3_LIMITS) -> int:
    """The smallest part a body of ``expected`` bytes may be cut into: the store's minimum,
    or more when ``max_parts`` of that size would not hold it."""
    if expected is None:
        return limits.min_part
    return max(limits.min_part, -(-expected // limits.max_parts))


def grown_part(base: int, expected: int | None, budget_limit: int,
               in_flight: int = MAX_IN_FLIGHT) -> int:
    """The base part size, or twice it for a large announced body when the budget holds
    ``in_flight`` such parts and the one filling (as many connections busy as with the
    base size, never fewer)."""
    if expected is None or expected < LARGE_BODY_PARTS * base:
        return base
    bigger = 2 * base
    return bigger if (in_flight + 1) * (bigger + CHUNK) <= budget_limit else base


def choose_part_size(
    base: int, expected: int | None, budget_limit: int, limits: StoreLimits = S3_LIMITS
) -> int:
    """The part size for a body of ``expected`` bytes (None: not announced).

    ``base`` (``--write-part-size``) doubles for a large body (``grown_part``), grows
    for a body that would need more than ``max_parts`` parts, and is capped by the
    store's largest part and by the budget: a part being filled holds up to
    ``part + CHUNK`` bytes, which must fit in ``budget_limit``. Raises TooLarge,
    before any byte is read, for a length past the store's largest object or one whose
    smallest legal part the budget cannot hold.
    """
    refuse_oversize(expected, limits)
    ceiling = min(budget_limit, limits.max_part) - CHUNK
    smallest = smallest_part(expected, limits)
    if expected is not None:
        # A body no larger than its smallest part is one PutObject of exactly its size.
        need = expected if expected <= smallest else smallest + CHUNK
        if need > budget_limit:
            raise TooLarge(
                f"the announced body of {expected:,} bytes must be cut into parts of at "
                f"least {_mib(need)} (the store takes at most {limits.max_parts:,} parts), "
                f"more than the memory budget of {_mib(budget_limit)} can hold: start "
                f"bucketdav with --memory-target {target_for(need)} or more; nothing was "
                "written"
            )
        return max(smallest, min(grown_part(base, expected, budget_limit), ceiling))
    if ceiling <= 0:
        raise TooLarge(f"the memory budget of {_mib(budget_limit)} cannot hold a part: "
                       "start bucketdav with a larger --memory-target; nothing was written")
    return min(base, ceiling)


class BodyReader:
    """Cuts a stream of chunks into parts of exactly the part size and checks the
    announced length.

    ``read_part`` fills one buffer allocated at its full size up front and hands it over
    as ``bytes`` without a copy (``BytesIO.getvalue`` returns its own buffer), so a part
    costs its reservation and nothing more. Each chunk is copied in as it arrives; the
    one that crosses the end of a part is split, its rest (``pending``, less than a
    chunk) beginning the next part. A buffer filled to its size is never shrunk, so never
    reallocated: only the last part of a body may be shorter. A producer chunk larger
    than ``CHUNK`` (none from the PUT handler) is taken ``CHUNK`` bytes at a time, its
    rest kept meanwhile.
    """

    def __init__(self, chunks: AsyncIterable[bytes], expected_size: int | None) -> None:
        self._chunks: AsyncIterator[bytes] = aiter(chunks)
        self._rest: memoryview | None = None  # the unread rest of an oversized chunk
        # Taken from the stream, not yet in a part: at most one piece (``CHUNK`` bytes).
        self._pending: bytes | memoryview | None = None
        self.expected_size = expected_size
        self.received = 0  # bytes taken from the stream
        self.delivered = 0  # bytes handed out in parts
        self.eof = False

    @property
    def left(self) -> int | None:
        """Bytes the announced length still promises (None if nothing was announced)."""
        if self.expected_size is None:
            return None
        return self.expected_size - self.delivered

    async def _peek(self) -> None:
        """Take the next piece from the stream and keep it for the next part."""
        if self._pending is None and not self.eof:
            piece = await self._next()
            self._pending = piece or None

    async def started(self) -> bool:
        """Wait for the body's first bytes, kept for the next part; False if it is empty."""
        await self._peek()
        return not self.eof

    async def _next(self) -> bytes | memoryview:
        """The next piece of at most ``CHUNK`` bytes; empty at the end (``eof``)."""
        if self._pending is not None:
            piece, self._pending = self._pending, None
            return piece
        if self._rest is not None:
            piece, rest = self._rest[:CHUNK], self._rest[CHUNK:]
            self._rest = rest if len(rest) else None
            return piece
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self.eof = True
            return b""
        self.received += len(chunk)
        check_length(self.received, self.expected_size, ended=False)
        if len(chunk) > CHUNK:
            whole = memoryview(chunk)
            self._rest = whole[CHUNK:]
            return whole[:CHUNK]
        return chunk

    def capacity(self, part_size: int) -> int:
        """The reservation the next part needs: the part and the piece in hand (a chunk),
        or exactly what is left of an announced body when that is no more."""
        left = self.left
        full = part_size + CHUNK
        return full if left is None else min(full, left)

    async def read_part(self, part_size: int) -> bytes:
        """Exactly ``part_size`` bytes (what is left of an announced body, if less);
        fewer only if the body ends first."""
        left = self.left
        size = part_size if left is None else min(part_size, left)
        buffer = io.BytesIO()
        have = 0
        sized = False
        while have < size:
            piece = await self._next()
            if not piece:
                break  # the end of the body
            room = size - have
            if len(piece) > room:  # the next part begins with the rest
                whole = memoryview(piece)
                piece, self._pending = whole[:room], whole[room:]
            if have and not sized:
                # A second piece: allocate the whole part once, so it never grows (and is
                # never copied). A body of one piece costs only its own size.
                buffer.seek(size - 1)
                buffer.write(b"\0")
                buffer.seek(have)
                sized = True
            written = buffer.write(piece)
            del piece  # not held while the next one is awaited
            have += written
            self.delivered += written
        if have < size:
            buffer.truncate(have)
        return buffer.getvalue()

    async def ended(self) -> bool:
        """True once the body is known to be over: the stream ended (a piece is read ahead
        to know it), or the announced length is all delivered and the stream confirms it
        (more bytes are refused)."""
        await self._peek()  # past an announced length, raises LengthMismatch
        return self.eof

    def check_complete(self) -> None:
        check_length(self.received, self.expected_size, ended=True)


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
    limits: StoreLimits = S3_LIMITS,
    commit_guard: contextlib.AbstractAsyncContextManager[None] | None = None,
    mtime: float | None = None,
) -> ObjectInfo:
    """Write the whole stream to ``key``; the object appears only when complete.

    ``part_size``: the multipart part size for a body of unknown length (see
    ``choose_part_size``). ``expected_size``: the announced length; a body of another
    length is not committed (LengthMismatch). ``create_only``: refuse (Exists) if the key
    exists when the object would be committed. Called through ``StoreView.write_stream``,
    which keeps the caches. Refusals of the announced length come before the first chunk
    is asked for. ``commit_guard`` is held around the one request that makes the object
    visible, never while the body streams (``gateway.engine.guard``). ``mtime``: the
    modification time stored with the object (``gateway.storage.mtime``).
    """
    size = choose_part_size(part_size, expected_size, budget.limit, limits)
    body = BodyReader(chunks, expected_size)
    upload = _Multipart(store, budget, key, size, max_in_flight, limits)
    if known_multipart(expected_size, size):
        # The upload is created while its first part arrives: one round trip less.
        return await upload.run(body, content_type, create_only, commit_guard, mtime)
    # A small body of known length reserves only its length: many small PUTs at once
    # (a Finder copy of a folder) must not each hold a whole part of the budget.
    held = await budget.acquire(body.capacity(size))
    handed_over = False
    try:
        first = await body.read_part(size)
        if await body.ended():
            body.check_complete()
            held = _keep_only(budget, held, len(first))
            async with commit_guard or contextlib.nullcontext():
                return await store.put(key, first, content_type, if_none_match=create_only,
                                       mtime=mtime)
        upload.hand_over(first, held)
        handed_over = True  # from here the upload owns the part and its reservation
        del first  # the part must not stay referenced once it is uploaded
    finally:
        if not handed_over:
            budget.release(held)
    return await upload.run(body, content_type, create_only, commit_guard, mtime)


def known_multipart(expected: int | None, part_size: int) -> bool:
    """A body announced longer than one part can only be a multipart upload (or refused):
    it need not be read before the upload is created."""
    return expected is not None and expected > part_size


def _keep_only(budget: MemoryBudget, held: int, used: int) -> int:
    """Give back what a part's buffer did not use; returns the reservation kept."""
    if used < held:
        budget.release(held - used)
    return used


class _Multipart:
    def __init__(
        self,
        store: ObjectStore,
        budget: MemoryBudget,
        key: str,
        part_size: int,
        in_flight: int,
        limits: StoreLimits,
    ) -> None:
        self._first: bytes | None = None  # a first part read before run(), if any
        self._held = 0  # bytes reserved for ``_first``
        self.store = store
        self.budget = budget
        self.key = key
        self.part_size = part_size
        self.limits = limits
        self.slots = asyncio.Semaphore(max(1, in_flight))
        self.tasks: list[asyncio.Task[UploadPart]] = []
        self.creating: asyncio.Future[str] | None = None

    def hand_over(self, first: bytes, held: int) -> None:
        """The first part, already read, and its reservation: the upload owns them now."""
        self._first, self._held = first, held

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

    def _create(self, content_type: str | None, mtime: float | None) -> asyncio.Future[str]:
        if self.part_size < self.limits.min_part:
            raise TooLarge(
                f"the body is larger than one part of {_mib(self.part_size)}, and the "
                "memory budget cannot hold a part of the store's minimum size "
                f"({_mib(self.limits.min_part)}): start bucketdav with a larger "
                "--memory-target; nothing was written"
            )
        self.creating = asyncio.ensure_future(
            self.store.create_upload(self.key, content_type, mtime))
        return self.creating

    async def _read_first(self, body: BodyReader, content_type: str | None,
                          mtime: float | None) -> tuple[bytes, int]:
        """The first part, read while the upload is created (once its first bytes came:
        a client that sends none costs the store nothing), and the reservation held for
        it and for the piece in hand."""
        held = await self.budget.acquire(body.capacity(self.part_size))
        try:
            if await body.started():
                self._create(content_type, mtime)
            data = await body.read_part(self.part_size)
        except BaseException:
            self.budget.release(held)
            raise
        return data, _keep_only(self.budget, held, len(data)) if body.eof else held

    async def run(self, body: BodyReader, content_type: str | None, create_only: bool,
                  commit_guard: contextlib.AbstractAsyncContextManager[None] | None = None,
                  mtime: float | None = None) -> ObjectInfo:
        """Upload the first part and the rest of ``body``; every reservation is released
        exactly once, by the part's task or here. ``held`` covers the part being filled
        and the piece in hand (read ahead, or the rest of one split across a part's end),
        so no body byte waits outside the budget."""
        data, self._first = self._first, None
        held, self._held = self._held, 0
        try:
            if data is None:
                data, held = await self._read_first(body, content_type, mtime)
                if not data:
                    body.check_complete()  # an empty body of an announced length: refused
            creating = self.creating or self._create(content_type, mtime)
            upload_id = await creating
            number = 0
            while data:
                number += 1
                if number > self.limits.max_parts:
                    raise TooLarge(
                        f"the body needs more than {self.limits.max_parts:,} parts of "
                        f"{_mib(self.part_size)}: send a Content-Length or start bucketdav "
                        "with a larger --write-part-size (and --memory-target)"
                    )
                await self.slots.acquire()
                self._start(upload_id, number, data, len(data))
                held -= len(data)  # the rest of the reservation: the piece in hand
                data = b""
                self._raise_failures()
                need = body.capacity(self.part_size) - held
                if need > 0:
                    held += await self.budget.acquire(need)
                if not await body.ended():
                    data = await body.read_part(self.part_size)
                if body.eof:  # nothing more in hand: only the last part's bytes stay
                    held = _keep_only(self.budget, held, len(data))
            body.check_complete()
            parts = list(await asyncio.gather(*self.tasks))
            # Create-only: the store refuses (Exists) a key created by someone else meanwhile.
            async with commit_guard or contextlib.nullcontext():
                return await self.store.complete_upload(
                    self.key, upload_id, parts, if_none_match=create_only
                )
        except BaseException:
            if held:
                self.budget.release(held)
            await self._abort()
            raise

    async def _abort(self) -> None:
        for task in self.tasks:
            task.cancel()
        # Shielded: a cancelled handler must still clean up, and a second cancellation
        # must not stop the abort half-way.
        await asyncio.shield(self._cleanup())

    async def _cleanup(self) -> None:
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.creating is None:
            return
        # Never cancelled: a create already sent may still make an upload, to be aborted.
        (upload_id,) = await asyncio.gather(self.creating, return_exceptions=True)
        if not isinstance(upload_id, str):
            return  # the create failed: there is no upload
        try:
            await self.store.abort_upload(self.key, upload_id)
        except GatewayError as exc:
            log.warning("could not abort the upload of %r (%s): %s", self.key, upload_id,
                        exc.message)
