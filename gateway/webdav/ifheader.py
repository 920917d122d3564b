"""The WebDAV ``If`` header (RFC 4918 section 10.4): a pure parser and evaluator.

    If = 1*No-tag-list | 1*Tagged-list
    Tagged-list = "<" resource ">" 1*List
    List = "(" 1*(["Not"] ("<" state-token ">" | "[" entity-tag "]")) ")"

Lists are alternatives (any one true is enough); the conditions of one list must all hold.
Untagged lists apply to the request target; tagged lists to the resource they name, which is
compared by PATH only: proxies rewrite scheme and host, and clients disagree on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.errors import BadRequest, InvalidPath
from gateway.fs.paths import decode_path
from gateway.fs.preconditions import opaque

NO_LOCK = "DAV:no-lock"  # a state token no lock ever has: "(Not <DAV:no-lock>)" is always true


@dataclass(frozen=True, slots=True)
class Condition:
    negated: bool
    token: str | None = None  # a state token (lock token), without the angle brackets
    etag: str | None = None  # an entity tag as sent: '"abc"' or 'W/"abc"'


@dataclass(frozen=True, slots=True)
class IfList:
    resource: str | None  # the resource tag as sent, None for an untagged list
    conditions: tuple[Condition, ...]


def _malformed(why: str) -> BadRequest:
    return BadRequest(f"malformed If header: {why}")


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def skip_ws(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in " \t\r\n":
            self.i += 1

    def peek(self) -> str:
        self.skip_ws()
        return self.text[self.i] if self.i < len(self.text) else ""

    def until(self, close: str, what: str) -> str:
        """The text up to ``close`` (consumed); the current character is the opener."""
        end = self.text.find(close, self.i + 1)
        if end < 0:
            raise _malformed(f"unterminated {what}")
        value = self.text[self.i + 1 : end].strip()
        self.i = end + 1
        if not value:
            raise _malformed(f"empty {what}")
        return value

    def etag(self) -> str:
        """``[W/"x"]``: quoted tags may hold ``]``; unquoted ones are tolerated."""
        self.i += 1
        self.skip_ws()
        rest = self.text[self.i :]
        if rest.startswith(('"', 'W/"')):
            quote = self.text.find('"', self.i) + 1
            end = self.text.find('"', quote)
            if end < 0:
                raise _malformed("unterminated entity tag")
            value = self.text[self.i : end + 1]
            self.i = end + 1
            if self.peek() != "]":
                raise _malformed("expected ] after the entity tag")
            self.i += 1
            return value
        self.i -= 1
        return self.until("]", "entity tag")

    def condition_list(self) -> tuple[Condition, ...]:
        self.i += 1  # "("
        conditions: list[Condition] = []
        while True:
            c = self.peek()
            if c == ")":
                self.i += 1
                break
            negated = False
            if self.text[self.i : self.i + 3].lower() == "not":
                negated = True
                self.i += 3
                c = self.peek()
            if c == "<":
                conditions.append(Condition(negated, token=self.until(">", "state token")))
            elif c == "[":
                conditions.append(Condition(negated, etag=self.etag()))
            elif not c:
                raise _malformed("unterminated list")
            else:
                raise _malformed(f"unexpected {c!r} in a list")
        if not conditions:
            raise _malformed("empty list ()")
        return tuple(conditions)


def parse_if(header: str) -> tuple[IfList, ...]:
    """Parse an If header value; raises BadRequest (400) when it is malformed."""
    reader = _Reader(header)
    lists: list[IfList] = []
    tagged: bool | None = None
    resource: str | None = None
    needs_list = False
    while c := reader.peek():
        if c == "<":
            if tagged is False:
                raise _malformed("it mixes tagged and untagged lists")
            if needs_list:
                raise _malformed("a resource tag has no list")
            tagged, needs_list = True, True
            resource = reader.until(">", "resource tag")
        elif c == "(":
            tagged = bool(tagged)
            lists.append(IfList(resource if tagged else None, reader.condition_list()))
            needs_list = False
        else:
            raise _malformed(f"unexpected {c!r}")
    if needs_list:
        raise _malformed("a resource tag has no list")
    if not lists:
        raise _malformed("no condition list")
    return tuple(lists)


def submitted_tokens(lists: tuple[IfList, ...]) -> set[str]:
    """Lock tokens the request submits: every state token not under ``Not``."""
    return {
        c.token
        for lst in lists
        for c in lst.conditions
        if c.token is not None and not c.negated and c.token != NO_LOCK
    }


def tag_parts(resource: str) -> tuple[str, ...] | None:
    """The decoded path of a resource tag (scheme, host and query ignored); None when
    the tag's path could not name anything."""
    parts = urlsplit(resource)
    path = parts.path if (parts.scheme or parts.netloc) else resource.partition("?")[0]
    try:
        return decode_path(path or "/").parts
    except InvalidPath:
        return None


def _etag_equal(sent: str, current: str | None) -> bool:
    return current is not None and opaque(sent)[1] == opaque(current)[1]


def evaluate(
    lists: tuple[IfList, ...],
    target: tuple[str, ...],
    *,
    is_request_target: bool,
    holds: Callable[[str], bool],
    etag: str | None,
) -> bool:
    """Does the header allow the operation on ``target`` (full path components)?

    ``holds(token)``: the token names a lock that covers the target. ``etag``: the target's
    current entity tag (None if it does not exist). Untagged lists apply only to the request
    target; when no list applies to ``target`` the header does not constrain it.
    """
    if any(lst.resource is not None for lst in lists):
        relevant = [lst for lst in lists if tag_parts(lst.resource or "") == target]
    else:
        relevant = list(lists) if is_request_target else []
    if not relevant:
        return True

    def holds_true(c: Condition) -> bool:
        if c.token is not None:
            value = c.token != NO_LOCK and holds(c.token)
        else:
            value = _etag_equal(c.etag or "", etag)
        return value != c.negated

    return any(all(holds_true(c) for c in lst.conditions) for lst in relevant)
