"""The disk cache's file format: one block of one object version per file.

A file is a fixed header, the block's identity, its bytes and a CRC-32C of everything
before it (Castagnoli: hardware-computed, several times faster than zlib's CRC-32, which
cost a quarter of a CPU-second per GiB read from the cache)::

    magic "bdavblk2" | store length (u16) | key length (u32) | etag length (u16)
    | block index (u64) | data length (u64) | store | key | etag | data | crc32c (u32)

(big-endian). ``decode`` checks the checksum and that the identity and the length are the
ones asked for before handing out a byte: a corrupted, truncated or foreign file is an
error, never data. File names come from a hash of the identity (``file_name``): the first
half names the object, so a directory listing says which objects have blocks on disk
without opening a file. Pure functions: no I/O here.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from crc32c import crc32c

MAGIC = b"bdavblk2"  # bdavblk1 files (zlib CRC-32) are not block files: refetched
_HEAD = struct.Struct(">8sHIHQQ")
_CRC = struct.Struct(">I")
CHECKSUM_SIZE = _CRC.size  # the file's last bytes
SUFFIX = ".blk"


class BadBlockFile(ValueError):
    """A block file that must not be served; the message says why."""


@dataclass(frozen=True, slots=True)
class BlockId:
    """A block of an object version, as the disk cache names it: ``store`` is the store's
    stable description (view ids change with every start)."""

    store: str
    key: str
    etag: str
    index: int


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def _digest(*parts: bytes) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:  # length-prefixed: no two identities hash the same input
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def object_name(store: str, key: str) -> str:
    """The hash naming every block file of ``key`` in ``store`` (any version)."""
    return _digest(_text(store), _text(key))


def file_name(block: BlockId) -> str:
    """``<object hash>-<block hash>.blk``."""
    version = _digest(_text(block.store), _text(block.key), _text(block.etag),
                      block.index.to_bytes(8, "big"))
    return f"{object_name(block.store, block.key)}-{version}{SUFFIX}"


def is_file_name(name: str) -> bool:
    """True for a name ``file_name`` could have made."""
    if not name.endswith(SUFFIX):
        return False
    first, dash, second = name[: -len(SUFFIX)].partition("-")
    return bool(dash) and len(first) == 32 and len(second) == 32


def object_of(name: str) -> str:
    """The object hash of a block file name (one ``is_file_name`` accepts)."""
    return name.partition("-")[0]


def _identity(block: BlockId) -> tuple[bytes, bytes, bytes]:
    return _text(block.store), _text(block.key), _text(block.etag)


def file_size(block: BlockId, length: int) -> int:
    """Bytes the file of ``block`` with ``length`` data bytes takes."""
    return _HEAD.size + sum(map(len, _identity(block))) + length + _CRC.size


def encode(block: BlockId, chunks: list[bytes]) -> bytes:
    """The whole file for ``block`` holding ``chunks`` (its bytes, in order)."""
    return b"".join(encode_pieces(block, chunks))


def encode_pieces(block: BlockId, chunks: list[bytes]) -> list[bytes]:
    """The file of ``encode`` as the pieces to write one after the other: the block's
    bytes are not copied (the writer hands them to the file as they are), only checksummed."""
    store, key, etag = _identity(block)
    length = sum(map(len, chunks))
    head = b"".join([_HEAD.pack(MAGIC, len(store), len(key), len(etag), block.index, length),
                     store, key, etag])
    crc = crc32c(head)
    for chunk in chunks:
        crc = crc32c(chunk, crc)
    return [head, *chunks, _CRC.pack(crc)]


def head_size(block: BlockId) -> int:
    """Bytes before the data in the file of ``block``: the fixed head and its identity."""
    return _HEAD.size + sum(map(len, _identity(block)))


def decode(raw: bytes, block: BlockId, length: int) -> bytes:
    """The data of a file read whole, if it is intact and is exactly ``block`` with
    ``length`` bytes; BadBlockFile otherwise."""
    start = head_size(block)
    view = memoryview(raw)
    return check(bytes(view[:start]), bytes(view[start : start + length]),
                 bytes(view[start + length :]), block, length)


def check(head: bytes, data: bytes, tail: bytes, block: BlockId, length: int) -> bytes:
    """``data`` if a file read as ``head`` (``head_size`` bytes asked for), ``data``
    (``length`` asked for) and ``tail`` (the rest, read to its end) is intact and is
    exactly ``block`` with ``length`` bytes; BadBlockFile otherwise. Read in three pieces,
    the data is served without being cut out of a larger copy."""
    whole = len(head) + len(data) + len(tail)
    if whole < _HEAD.size + _CRC.size or len(head) < _HEAD.size:
        raise BadBlockFile(f"truncated: {whole} bytes")
    magic, store_len, key_len, etag_len, index, data_len = _HEAD.unpack_from(head)
    if magic != MAGIC:
        raise BadBlockFile("not a block file")
    start = _HEAD.size + store_len + key_len + etag_len
    if whole != start + data_len + _CRC.size:
        raise BadBlockFile(f"truncated or padded: {whole} bytes")
    if (len(head), len(data), len(tail)) != (start, data_len, _CRC.size):
        raise BadBlockFile("holds another block")  # its identity is not this block's size
    (crc,) = _CRC.unpack(tail)
    if crc32c(data, crc32c(head)) != crc:
        raise BadBlockFile("checksum mismatch")
    store, key, etag = _identity(block)
    fields = head[_HEAD.size:start]
    if (fields != store + key + etag or (store_len, key_len, etag_len)
            != (len(store), len(key), len(etag)) or index != block.index):
        raise BadBlockFile("holds another block")
    if data_len != length:
        raise BadBlockFile(f"holds {data_len} bytes, not {length}")
    return data
