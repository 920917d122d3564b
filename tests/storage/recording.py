"""A TCP proxy in front of a store that records the head of every request as it goes on the
wire, whatever sent it: botocore's pipeline or the hot path (``s3fast.HotPath``)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from bench.proxy import RequestFramer, ShapingProxy

Request = tuple[str, dict[str, str]]  # (S3 operation, headers with lower-case names)


class _HeadFramer(RequestFramer):
    def __init__(self, heads: list[bytes]) -> None:
        super().__init__()
        self._heads = heads

    def _end_head(self, head: bytes) -> None:
        if head.strip(b"\r\n"):
            self._heads.append(head.lstrip(b"\r\n"))
        super()._end_head(head)


def operation(method: str, target: str, headers: dict[str, str]) -> str:
    """The S3 operation of a path-style request."""
    path, _, query = target.partition("?")
    params = {pair.partition("=")[0] for pair in query.split("&") if pair}
    on_object = len([s for s in path.split("/") if s]) > 1  # bucket, then a key
    copy = "x-amz-copy-source" in headers
    if method == "HEAD":
        return "HeadObject" if on_object else "HeadBucket"
    if method == "GET":
        if on_object:
            return "GetObject"
        if "uploads" in params:
            return "ListMultipartUploads"
        return "ListObjectsV2" if "list-type" in params else "ListObjects"
    if method == "PUT":
        if "partNumber" in params:
            return "UploadPartCopy" if copy else "UploadPart"
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        if "uploads" in params:
            return "CreateMultipartUpload"
        if "uploadId" in params:
            return "CompleteMultipartUpload"
        if "delete" in params:
            return "DeleteObjects"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in params else "DeleteObject"
    return f"{method} {path}"


class Recorder(ShapingProxy):
    """Forwards to ``backend`` unshaped; ``requests`` are what reached it, in order."""

    def __init__(self, backend: str) -> None:
        parts = urlsplit(backend)
        assert parts.hostname is not None and parts.port is not None
        super().__init__(parts.hostname, parts.port, bandwidth=0, latency=0)
        self.heads: list[bytes] = []

    @classmethod
    async def start_for(cls, backend: str) -> Recorder:
        recorder = cls(backend)
        await recorder.start()
        return recorder

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _upstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = _HeadFramer(self.heads)
        try:
            while data := await reader.read(64 * 1024):
                framer.feed(data)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            writer.close()

    @property
    def requests(self) -> list[Request]:
        found = []
        for head in self.heads:
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            found.append((operation(method, target, headers), headers))
        return found

    def operations(self) -> set[str]:
        return {op for op, _ in self.requests}
