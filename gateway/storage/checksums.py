"""Checksums the gateway computes for a store, and the ones a store holds, by their
RFC 9530 names.

S3 keeps a checksum per object (``x-amz-checksum-*``, returned by HEAD with
``ChecksumMode=ENABLED``). The ones RFC 9530's registry names become ``ObjectInfo.digests``
and so ``Repr-Digest``: SHA-256, SHA-512, SHA-1 (``sha``), MD5 and CRC32C (the last three
registered as deprecated). CRC32, CRC64NVME and the XXHASH family have no registered name
and are left out, as is a multipart upload's COMPOSITE checksum (a checksum of the parts'
checksums, ``...-N``), which is no digest of the object's bytes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any, Literal

import crc32c

Algorithm = Literal["crc32c", "sha256"]

# botocore's response member -> the RFC 9530 algorithm key.
RFC9530_NAMES = {
    "ChecksumSHA256": "sha-256",
    "ChecksumSHA512": "sha-512",
    "ChecksumSHA1": "sha",
    "ChecksumMD5": "md5",
    "ChecksumCRC32C": "crc32c",
}
# The gateway's algorithm -> botocore's request member, ChecksumAlgorithm and RFC 9530 key.
PARAMS: dict[Algorithm, tuple[str, str, str]] = {
    "crc32c": ("ChecksumCRC32C", "CRC32C", "crc32c"),
    "sha256": ("ChecksumSHA256", "SHA256", "sha-256"),
}
# Hash this much or more on a thread: both hashlib and crc32c release the GIL, and an
# 8 MiB part's SHA-256 (about 15 ms) must not stall every other request of the loop.
THREAD_AT = 1024 * 1024


def checksum(algorithm: Algorithm, data: bytes) -> str:
    """The base64 checksum S3 expects in ``x-amz-checksum-*`` (CRC32C big-endian)."""
    if algorithm == "crc32c":
        raw = crc32c.crc32c(data).to_bytes(4, "big")
    else:
        raw = hashlib.sha256(data).digest()
    return base64.b64encode(raw).decode("ascii")


async def checksum_async(algorithm: Algorithm, data: bytes) -> str:
    if len(data) < THREAD_AT:
        return checksum(algorithm, data)
    return await asyncio.to_thread(checksum, algorithm, data)


def stored_digests(response: dict[str, Any], multipart: bool
                   ) -> tuple[tuple[str, str], ...]:
    """``(RFC 9530 key, base64 value)`` for each whole-object checksum in a HEAD/GET
    answer. The checksum of a ``multipart`` object counts only when the store says it is
    FULL_OBJECT (S3 offers that for CRCs only): some S3-compatibles (moto) return a
    COMPOSITE one without its ``-N`` and without its type."""
    kind = response.get("ChecksumType")
    if kind == "COMPOSITE" or (multipart and kind != "FULL_OBJECT"):
        return ()
    found = []
    for member, name in RFC9530_NAMES.items():
        value = response.get(member)
        # "...-N": a multipart checksum of checksums, whatever the type says.
        if isinstance(value, str) and value and "-" not in value:
            found.append((name, value))
    return tuple(found)
