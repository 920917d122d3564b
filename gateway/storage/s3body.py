"""What S3Store needs around botocore's answers: dates, Content-Range, a request body
that is never copied (and goes out in one write), an empty body."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from aiohttp import payload
from aiohttp.abc import AbstractStreamWriter

CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def total_from_content_range(value: str | None) -> int | None:
    match = CONTENT_RANGE.match(value or "")
    if match is None or match.group(3) == "*":
        return None
    return int(match.group(3))


def utc(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def response_date(response: dict[str, Any]) -> datetime:
    """The store's clock at the answer: S3 writes responses carry no Last-Modified."""
    header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return utc(parsedate_to_datetime(header)) if header else utc(None)
    except (TypeError, ValueError):
        return utc(None)


class Body(io.BytesIO):
    """A request body over ``data`` that is never copied. ``getbuffer()`` is a view of
    ``data``: a BytesIO's own copies the whole body first (every part in flight was held
    twice, the copy outside the engine's memory budget), and that view is what aiohttp
    sends, in one write (``BodyPayload``). A new one per request: botocore may read it.
    ``sha256``: the body's, when computed beforehand (``prehash.py``)."""

    def __init__(self, data: bytes, sha256: str | None = None) -> None:
        super().__init__(data)
        self._data = data
        self.sha256 = sha256

    def getbuffer(self) -> memoryview:
        return memoryview(self._data)


class BodyPayload(payload.Payload):
    """How aiohttp sends a ``Body``: all of it in one write, from the bytes themselves.
    aiohttp's payload for any BytesIO reads it in 256 KiB pieces, each one a new copy
    and a trip around the event loop (4,096 of them per GiB uploaded); the transport
    takes the whole part at once instead and sends it as the socket drains. Sent again
    from the start on every attempt (botocore retries with the same body)."""

    _autoclose = True  # nothing to close: the bytes are the Body's

    def __init__(self, value: Body, *args: Any, **kwargs: Any) -> None:
        super().__init__(value, *args, **kwargs)
        self._size = len(value.getbuffer())

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        view = self._value.getbuffer()
        await writer.write(view if content_length is None else view[:content_length])

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes(self._value.getbuffer()).decode(encoding, errors)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return bytes(self._value.getbuffer())


# First, before aiohttp's BytesIO payload (a Body is a BytesIO); aiobotocore hands the
# body over wrapped in a proxy, which isinstance sees through.
payload.PAYLOAD_REGISTRY.register(BodyPayload, Body, order=payload.Order.try_first)


async def empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator
