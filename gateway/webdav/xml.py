"""Safe parsing of WebDAV request bodies and compact building of responses.

Request bodies come from anyone, so they are read with a size cap (refused past it without
buffering the rest) and parsed with defusedxml: DTDs, entity declarations and external
references are refused outright, so an entity bomb is a 400 before anything expands.
Element depth and count are bounded while parsing.

Responses are written as compact strings with the ``D:`` prefix for ``DAV:`` (no pretty
printing: Windows refuses PROPFIND answers past about 1 MB). Any other namespace is declared
on the element that uses it, so every fragment stands alone and can be streamed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from xml.sax.saxutils import escape as _escape
from xml.sax.saxutils import quoteattr

from aiohttp import web
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from gateway.errors import BadRequest, TooLarge

DAV = "DAV:"
XML_NS = "http://www.w3.org/XML/1998/namespace"  # xml:lang, xml:space: never redeclared
MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_ELEMENTS = 10_000
XML_DECL = '<?xml version="1.0" encoding="utf-8"?>'
CONTENT_TYPE = "application/xml; charset=utf-8"
# The 207 body's outer element (PROPFIND, PROPPATCH, and collection methods' failures).
MULTISTATUS_OPEN = '<D:multistatus xmlns:D="DAV:">'
MULTISTATUS_CLOSE = "</D:multistatus>"
_READ_CHUNK = 64 * 1024
_UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_ENCODING_DECL = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


@dataclass(frozen=True, slots=True)
class XmlLimits:
    """Bounds on XML request bodies; the app sets them from --max-xml-bytes/-depth."""

    max_bytes: int = MAX_BODY_BYTES
    max_depth: int = MAX_DEPTH
    max_elements: int = MAX_ELEMENTS


XML_LIMITS = web.AppKey("xml_limits", XmlLimits)


def dav(local: str) -> str:
    """The Clark name of a ``DAV:`` element: ``{DAV:}local``."""
    return "{DAV:}" + local


# ---- request bodies -------------------------------------------------------------------


async def read_xml(request: web.Request, keep: frozenset[str] = frozenset()) -> XmlDoc | None:
    """Read and parse a request's XML body within the app's XmlLimits."""
    limits = request.app.get(XML_LIMITS) or XmlLimits()
    return parse(await read_body(request, limits.max_bytes), keep, limits)


async def read_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, refused (413) as soon as it passes ``limit`` bytes.

    A declared Content-Length past the limit is refused before reading anything; a chunked
    body is read only until it passes the limit.
    """
    length = request.content_length
    if length is not None and length > limit:
        raise TooLarge(f"request body of {length} bytes is over the {limit}-byte limit for XML")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"request body is over the {limit}-byte limit for XML")
        chunks.append(chunk)
    return b"".join(chunks)


class _LimitExceeded(Exception):
    """Raised from inside the parser's callbacks to stop at once."""


@dataclass
class XmlDoc:
    """A parsed body: the element tree, plus verbatim XML of the elements asked to keep."""

    root: ET.Element
    _kept: dict[int, str] = field(default_factory=dict)

    def verbatim(self, element: ET.Element) -> str:
        """The element's XML as the client sent it (content byte for byte, wrapped in an
        element carrying the namespace declarations in scope), else a faithful
        re-serialisation when the raw bytes could not be used."""
        return self._kept.get(id(element)) or serialize(element)


class _Target:
    """Builds the tree while counting depth and elements and tracking namespace scope;
    records the byte span of elements whose raw XML must be kept."""

    def __init__(self, body: bytes, keep: frozenset[str], limits: XmlLimits) -> None:
        self._body = body
        self._keep = keep
        self._limits = limits
        self._builder = ET.TreeBuilder()
        self._depth = 0
        self._count = 0
        self._pending_ns: dict[str, str] = {}
        self._scopes: list[dict[str, str]] = [{}]
        self._open: list[tuple[ET.Element, int, dict[str, str]]] = []
        self.kept: dict[int, str] = {}
        self.parser: Any = None  # the DefusedXMLParser driving this target

    def _index(self) -> int:
        return int(self.parser.parser.CurrentByteIndex)

    def start_ns(self, prefix: str, uri: str) -> None:
        self._pending_ns[prefix] = uri

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        self._depth += 1
        self._count += 1
        if self._depth > self._limits.max_depth:
            raise _LimitExceeded(f"XML nested deeper than {self._limits.max_depth} elements")
        if self._count > self._limits.max_elements:
            raise _LimitExceeded(f"XML has more than {self._limits.max_elements} elements")
        scope = self._scopes[-1]
        if self._pending_ns:
            scope = {**scope, **self._pending_ns}
            self._pending_ns = {}
        self._scopes.append(scope)
        element = self._builder.start(tag, attrs)
        if tag in self._keep:
            self._open.append((element, self._index(), scope))
        return element

    def end(self, tag: str) -> ET.Element:
        element = self._builder.end(tag)
        if self._open and self._open[-1][0] is element:
            _, start, scope = self._open.pop()
            raw = _raw_element(self._body, start, self._index(), scope)
            if raw is not None:
                self.kept[id(element)] = raw
        self._scopes.pop()
        self._depth -= 1
        return element

    def data(self, text: str) -> None:
        self._builder.data(text)

    def close(self) -> ET.Element:
        return self._builder.close()


def _start_tag_end(body: bytes, start: int) -> int:
    """Index of the ``>`` closing the start tag that begins at ``start``."""
    quote = 0
    for i in range(start, len(body)):
        c = body[i]
        if quote:
            if c == quote:
                quote = 0
        elif c in (0x22, 0x27):  # " or '
            quote = c
        elif c == 0x3E:  # >
            return i
    return len(body)


def _raw_element(body: bytes, start: int, end: int, scope: dict[str, str]) -> str | None:
    """``<D:name xmlns...>raw content</D:name>`` for a DAV: element, or None when the raw
    bytes cannot be reused (not UTF-8, or the client bound ``D`` to another namespace)."""
    if scope.get("D", DAV) != DAV:
        return None
    gt = _start_tag_end(body, start)
    if gt >= len(body):
        return None
    inner = b"" if body[gt - 1] == 0x2F else body[gt + 1 : end]  # "/>": empty element
    try:
        text = inner.decode("utf-8")
    except UnicodeDecodeError:
        return None
    name_end = start + 1
    while name_end < gt and body[name_end] not in b" \t\r\n/>":
        name_end += 1
    local = body[start + 1 : name_end].decode("utf-8").rpartition(":")[2]
    decls = "".join(
        f" xmlns={quoteattr(uri)}" if not prefix else f" xmlns:{prefix}={quoteattr(uri)}"
        for prefix, uri in sorted(scope.items())
        if prefix != "D"
    )
    if not text:
        return f"<D:{local}{decls}/>"
    return f"<D:{local}{decls}>{text}</D:{local}>"


def _declared(body: bytes) -> str:
    """The encoding the XML declaration names, quoted, for an error message."""
    declared = _ENCODING_DECL.match(body.lstrip(b"\xef\xbb\xbf"))
    return repr(declared.group(1).decode()) if declared else "(none declared)"


def _is_utf8(body: bytes) -> bool:
    if body.startswith((b"\xfe\xff", b"\xff\xfe")):
        return False
    declared = _ENCODING_DECL.match(body.lstrip(b"\xef\xbb\xbf"))
    return declared is None or declared.group(1).decode().lower() in _UTF8_NAMES


def parse(
    body: bytes, keep: frozenset[str] = frozenset(), limits: XmlLimits | None = None
) -> XmlDoc | None:
    """Parse a request body; None for an empty body. Raises BadRequest for anything
    malformed, any DTD or entity declaration, or a body past the depth/element limits.
    Elements named in ``keep`` (Clark names) keep their raw XML (``XmlDoc.verbatim``)."""
    if not body.strip():
        return None
    target = _Target(body, keep if _is_utf8(body) else frozenset(), limits or XmlLimits())
    parser = DefusedXMLParser(target=target, forbid_dtd=True)
    target.parser = parser
    try:
        parser.feed(body)
        root = parser.close()
    except _LimitExceeded as exc:
        raise BadRequest(f"request body refused: {exc}") from None
    except DefusedXmlException:
        raise BadRequest("request body refused: DTDs and entity declarations are not accepted"
                         ) from None
    except ET.ParseError as exc:
        raise BadRequest(f"request body is not well-formed XML: {exc}") from None
    except (ValueError, LookupError):
        # Expat takes UTF-8, UTF-16 and single-byte encodings only: others (utf-7, utf-32,
        # shift_jis) are a ValueError, names Python does not know a LookupError.
        raise BadRequest(
            f"request body refused: its declared encoding {_declared(body)} cannot be read; "
            "send UTF-8"
        ) from None
    if not isinstance(root, ET.Element):
        raise BadRequest("request body is not an XML document")
    return XmlDoc(root, target.kept)


# ---- responses ------------------------------------------------------------------------


def escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as entities (xml.sax.saxutils.escape), with no work for the
    common text that has none: a listing escapes several values per entry."""
    if "&" in text or "<" in text or ">" in text:
        return _escape(text)
    return text


def qname(name: str, prefix: str = "ns0") -> tuple[str, str]:
    """(qualified name, namespace declaration) to write a Clark ``name``."""
    if name.startswith("{"):
        ns, _, local = name[1:].partition("}")
    else:
        ns, local = "", name
    if ns == DAV:
        return "D:" + local, ""
    if not ns:
        return local, ""
    return f"{prefix}:{local}", f" xmlns:{prefix}={quoteattr(ns)}"


def element(name: str, inner: str = "") -> str:
    """``<name>inner</name>`` (``inner`` is XML already), or ``<name/>`` when empty."""
    tag, decl = qname(name)
    if not inner:
        return f"<{tag}{decl}/>"
    return f"<{tag}{decl}>{inner}</{tag}>"


def serialize(elem: ET.Element) -> str:
    """An element and its content as compact XML carrying its own namespace declarations,
    so it can be written into any answer as it is. ``xml:lang`` and the other ``xml:``
    attributes keep their reserved prefix (RFC 4918 section 4.3 asks that xml:lang be
    kept; binding another prefix to that namespace would make the whole answer malformed)."""
    tag, decl = qname(elem.tag)
    attrs = []
    for i, (name, value) in enumerate(elem.attrib.items()):
        if name.startswith("{" + XML_NS + "}"):
            attr, attr_decl = "xml:" + name.partition("}")[2], ""
        else:
            attr, attr_decl = qname(name, f"a{i}")
        attrs.append(f"{attr_decl} {attr}={quoteattr(value)}")
    inner = escape(elem.text or "") + "".join(
        serialize(child) + escape(child.tail or "") for child in elem
    )
    head = f"<{tag}{decl}{''.join(attrs)}"
    return f"{head}/>" if not inner else f"{head}>{inner}</{tag}>"


def document(body: str) -> bytes:
    """A complete response document: declaration plus ``body`` (whose root element must
    declare ``xmlns:D``)."""
    return (XML_DECL + body).encode("utf-8")


def xml_response(status: int, body: str, headers: dict[str, str] | None = None) -> web.Response:
    all_headers = {"Content-Type": CONTENT_TYPE, **(headers or {})}
    return web.Response(status=status, body=document(body), headers=all_headers)


def dav_error(status: int, condition: str) -> web.Response:
    """An RFC 4918 error body naming a precondition (``propfind-finite-depth``, ...)."""
    return xml_response(status, f'<D:error xmlns:D="DAV:"><D:{condition}/></D:error>')


def status_line(code: int) -> str:
    return f"HTTP/1.1 {code} {HTTPStatus(code).phrase}"
