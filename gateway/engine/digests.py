"""Digests of whole bodies (RFC 9530): checked on the way in, served on the way out.

In: a PUT may carry ``Content-MD5`` (RFC 1864), ``Repr-Digest`` or ``Content-Digest``
(sha-256, sha-512, md5), or ownCloud's ``OC-Checksum`` (``SHA1:<hex>`` or ``MD5:<hex>``,
as rclone's webdav backend sends it with ``vendor=owncloud``). ``verified`` hashes the
body as it streams through, once per algorithm, and raises ``DigestMismatch`` at its end
if a digest differs: the upload writer has not committed anything by then (its reader
asks for the end of the stream before the last request that makes the object visible),
so nothing is written and a multipart upload is aborted. A PUT body is stored as it comes
(no content coding is undone), so its content and its representation are the same bytes
and both fields are checked against them. Algorithms the gateway does not compute are
ignored, as RFC 9530 lets a recipient do.

Out: ``repr_digest`` formats the checksums a store holds (``ObjectInfo.digests``) as a
``Repr-Digest`` field, honouring ``Want-Repr-Digest`` preferences.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from multidict import CIMultiDictProxy

from gateway.errors import BadRequest

# RFC 9530 key -> hashlib name, for the digests a PUT may carry. SHA-1 ("sha") is checked
# only as OC-Checksum carries it; in Repr-Digest it stays ignored (_RFC9530).
_HASHES = {"sha-256": "sha256", "sha-512": "sha512", "md5": "md5", "sha": "sha1"}
_RFC9530 = ("sha-256", "sha-512", "md5")
# OC-Checksum type -> RFC 9530 key; other types (ADLER32) are not computed here: ignored.
_OC_TYPES = {"sha1": "sha", "md5": "md5"}
_SIZES = {key: hashlib.new(name).digest_size for key, name in _HASHES.items()}
# One member of a Structured Field Dictionary whose value is a Byte Sequence (RFC 9651),
# parameters allowed and ignored.
_MEMBER = re.compile(r"^([a-z*][a-z0-9_.*-]*)\s*=\s*:([A-Za-z0-9+/=]*):\s*(;.*)?$")
_WANT = re.compile(r"^([a-z*][a-z0-9_.*-]*)\s*=\s*(\d{1,2})\s*(;.*)?$")
DIGEST_FIELDS = ("Repr-Digest", "Content-Digest")


class DigestMismatch(BadRequest):
    """The body's digest is not the one the client sent: it is not committed."""


@dataclass(frozen=True, slots=True)
class Expected:
    field: str  # the header that carried it, for the message
    algorithm: str  # RFC 9530 key
    digest: bytes


def _b64(text: str, field: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{field}: {text!r} is not base64; nothing was written") from None


def _dictionary(value: str, field: str) -> list[tuple[str, str]]:
    members = []
    for raw in value.split(","):  # base64 has no comma, so a plain split is exact
        member = raw.strip()
        if not member:
            continue
        match = _MEMBER.match(member)
        if match is None:
            raise BadRequest(
                f"{field} is malformed ({member!r}); expected algorithm=:base64:, as in "
                "sha-256=:...: (RFC 9530); nothing was written"
            )
        members.append((match.group(1), match.group(2)))
    return members


def expected_digests(headers: CIMultiDictProxy[str]) -> list[Expected]:
    """The digests a PUT's headers promise for its body; 400 for a malformed one."""
    found: list[Expected] = []
    md5 = headers.get("Content-MD5")
    if md5 is not None:
        digest = _b64(md5.strip(), "Content-MD5")
        if len(digest) != 16:
            raise BadRequest("Content-MD5 must be the base64 of 16 bytes; nothing was written")
        found.append(Expected("Content-MD5", "md5", digest))
    for field in DIGEST_FIELDS:
        for value in headers.getall(field, ()):
            for algorithm, text in _dictionary(value, field):
                if algorithm not in _RFC9530:
                    continue  # not computed here: ignored (RFC 9530, section 3)
                digest = _b64(text, field)
                if len(digest) != _SIZES[algorithm]:
                    raise BadRequest(
                        f"{field}: a {algorithm} digest has {_SIZES[algorithm]} bytes, not "
                        f"{len(digest)}; nothing was written"
                    )
                found.append(Expected(field, algorithm, digest))
    oc = headers.get("OC-Checksum")
    if oc is not None:
        found.extend(_oc_checksum(oc))
    return found


def _oc_checksum(value: str) -> list[Expected]:
    """ownCloud's ``OC-Checksum: TYPE:hex`` (rclone sends one; several are split by
    spaces, as ``oc:checksums`` writes them)."""
    found = []
    for member in value.split():
        kind, sep, text = member.partition(":")
        algorithm = _OC_TYPES.get(kind.lower())
        if not sep or algorithm is None:
            continue  # a type not computed here
        try:
            digest = bytes.fromhex(text)
        except ValueError:
            digest = b""
        if len(digest) != _SIZES[algorithm]:
            raise BadRequest(
                f"OC-Checksum: a {kind.upper()} checksum is {2 * _SIZES[algorithm]} hex "
                f"digits (got {text[:80]!r}); nothing was written"
            )
        found.append(Expected("OC-Checksum", algorithm, digest))
    return found


async def verified(chunks: AsyncIterable[bytes], expected: list[Expected]
                   ) -> AsyncIterator[bytes]:
    """``chunks`` unchanged, hashed on the way; DigestMismatch at the end if a digest of
    ``expected`` differs (raised before the stream ends, so before any commit)."""
    hashers = {e.algorithm: hashlib.new(_HASHES[e.algorithm]) for e in expected}
    async for chunk in chunks:
        for hasher in hashers.values():
            hasher.update(chunk)
        yield chunk
    for e in expected:
        if hashers[e.algorithm].digest() != e.digest:
            raise DigestMismatch(
                f"the body does not match its {e.field} ({e.algorithm}): it was changed "
                "or cut on the way; nothing was written"
            )


def wanted(header: str | None) -> dict[str, int] | None:
    """``Want-Repr-Digest`` as ``{algorithm: preference}`` (1..10; 0 means "not
    acceptable" and is dropped); None without the field. A malformed member is ignored:
    it is only a preference."""
    if header is None:
        return None
    prefs: dict[str, int] = {}
    for raw in header.split(","):
        match = _WANT.match(raw.strip())
        if match is not None and 0 < int(match.group(2)) <= 10:
            prefs[match.group(1)] = int(match.group(2))
    return prefs


def repr_digest(digests: tuple[tuple[str, str], ...], want: dict[str, int] | None
                ) -> str | None:
    """The ``Repr-Digest`` value for the checksums a store holds: all of them, or with
    ``Want-Repr-Digest`` the most preferred one the store has (None: none of those)."""
    if not digests:
        return None
    chosen = list(digests)
    if want is not None:
        held = [d for d in digests if d[0] in want]
        if not held:
            return None
        chosen = [max(held, key=lambda d: want[d[0]])]
    return ", ".join(f"{name}=:{value}:" for name, value in chosen)
