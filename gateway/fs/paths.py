"""URL paths <-> object keys. Pure functions, no I/O.

The request target is decoded exactly once, from the raw bytes the client sent: a ``#``
or ``?`` that arrives percent-encoded is part of the name, a literal ``#`` is too (servers
never see fragments, so one that arrives is a character), and a literal ``?`` starts the
query. Names are never Unicode-normalised: NFC and NFD spellings are different keys, as
they are in the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from gateway.errors import InvalidPath

_CONTROL = re.compile("[\x00-\x1f\x7f]")


def invalid_name_reason(name: str) -> str | None:
    """Why ``name`` cannot be one path component, or None if it can."""
    if name == "":
        return "empty path component"
    if name in (".", ".."):
        return f"{name!r} is not allowed as a path component"
    if "\x00" in name:
        return "NUL is not allowed in a path"
    if _CONTROL.search(name):
        # A control character breaks XML replies (PROPFIND) and, as CR/LF, headers.
        return "control characters (U+0000-U+001F, U+007F) are not allowed in a name"
    if "\\" in name:
        return "backslash is not allowed in a path"
    return None


def is_valid_name(name: str) -> bool:
    return invalid_name_reason(name) is None


@dataclass(frozen=True, slots=True)
class DavPath:
    """A decoded path inside a share: its components and whether it ended in ``/``."""

    parts: tuple[str, ...]
    trailing_slash: bool = False

    @property
    def is_root(self) -> bool:
        return not self.parts

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else ""

    @property
    def parent(self) -> DavPath:
        return DavPath(self.parts[:-1], True)

    def child(self, name: str, is_dir: bool = False) -> DavPath:
        return DavPath((*self.parts, name), is_dir)

    def file_key(self, prefix: str) -> str:
        """The object key of this path as a file."""
        return prefix + "/".join(self.parts)

    def dir_prefix(self, prefix: str) -> str:
        """The key prefix of this path as a directory (ends in ``/`` unless the root)."""
        return prefix + "".join(p + "/" for p in self.parts)

    def is_inside(self, other: DavPath) -> bool:
        """True if self is other or lies below it."""
        return self.parts[: len(other.parts)] == other.parts

    def href(self, mount: str = "/", is_dir: bool | None = None) -> str:
        """The absolute, percent-encoded URL path (uppercase hex), ``/`` ended for dirs."""
        is_dir = self.trailing_slash if is_dir is None else is_dir
        body = "/".join(quote(p, safe="") for p in self.parts)
        base = mount if mount.endswith("/") else mount + "/"
        if not body:
            return base
        return base + body + ("/" if is_dir else "")


_ABSOLUTE_FORM = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?]*")


def split_target(raw_target: str) -> tuple[str, str]:
    """Split a raw request target into (path, query); ``#`` is kept as data.

    The absolute form (``http://host/path``, which HTTP/1.1 servers must accept) is
    reduced to its path.
    """
    absolute = _ABSOLUTE_FORM.match(raw_target)
    if absolute:
        raw_target = raw_target[absolute.end() :]
        if not raw_target.startswith("/"):
            raw_target = "/" + raw_target
    path, _, query = raw_target.partition("?")
    return path, query


def decode_path(raw_path: str) -> DavPath:
    """Decode a raw, still percent-encoded URL path (no query) into a DavPath.

    Raises InvalidPath for anything that could not be a key: traversal components,
    NUL, backslashes, empty components (``a//b``) and bytes that are not UTF-8.
    """
    if not raw_path.startswith("/"):
        raise InvalidPath("the path must be absolute")
    if "\x00" in raw_path:
        raise InvalidPath("NUL is not allowed in a path")
    trailing = raw_path.endswith("/")
    # Drop exactly one leading and one trailing slash: "/a//" has an empty component.
    body = raw_path[1:-1] if trailing else raw_path[1:]
    parts: list[str] = []
    if body:
        for raw in body.split("/"):
            try:
                name = unquote_to_bytes(raw).decode("utf-8")
            except UnicodeError:  # undecodable escapes, or raw bytes the server kept
                raise InvalidPath("the path is not valid UTF-8") from None
            if "/" in name:
                raise InvalidPath("an encoded slash (%2F) is not allowed in a name")
            reason = invalid_name_reason(name)
            if reason:
                raise InvalidPath(reason)
            parts.append(name)
    if raw_path.startswith("//"):
        raise InvalidPath("empty path component")
    return DavPath(tuple(parts), trailing or not parts)


def strip_mount(path: DavPath, mount_parts: tuple[str, ...]) -> DavPath | None:
    """The path relative to a share mounted at ``mount_parts``, or None if outside."""
    if path.parts[: len(mount_parts)] != mount_parts:
        return None
    return DavPath(path.parts[len(mount_parts) :], path.trailing_slash or path.parts == mount_parts)


def key_to_parts(prefix: str, key: str) -> tuple[str, ...] | None:
    """The path components of a key under prefix, or None if the key is not a valid path.

    A trailing ``/`` (a directory marker) is dropped; the caller knows it from the key.
    """
    if not key.startswith(prefix):
        return None
    rest = key[len(prefix) :]
    if rest.endswith("/"):
        rest = rest[:-1]
    if not rest:
        return ()
    parts = tuple(rest.split("/"))
    if not all(is_valid_name(p) for p in parts):
        return None
    return parts
