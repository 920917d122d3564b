"""Live properties of files and collections, rendered as compact XML fragments.

Nothing here does I/O: a property is computed from the listing/HEAD ``Entry`` and the
locks that cover the resource, or is one of its dead properties (``deadprops.py``), which
the caller read from the state store and which are written back exactly as stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from gateway.fs.listing import Entry
from gateway.responses import content_type_of, http_date, rfc3339
from gateway.webdav.lockservice import ActiveLock
from gateway.webdav.xml import dav, element, escape, status_line

EXECUTABLE = "{http://apache.org/dav/props/}executable"  # davfs2 asks for it
OC = "{http://owncloud.org/ns}"
OC_CHECKSUMS = OC + "checksums"  # rclone's webdav backend asks for it (vendor=owncloud)
# A single-part upload's S3 ETag: the MD5 of the bytes, quoted. A multipart one has "-N".
_MD5_ETAG = re.compile(r'^"([0-9a-f]{32})"$')
LOCKDISCOVERY = dav("lockdiscovery")

# What allprop returns: the RFC 4918 live properties. Quota properties are left out on
# purpose (macOS 15.4+ stalls about 90 s at mount when they are present); asked for by
# name they answer only on a share with a quota, else 404 like any unknown property.
ALLPROP: tuple[str, ...] = tuple(
    dav(name)
    for name in (
        "resourcetype",
        "creationdate",
        "displayname",
        "getcontentlength",
        "getcontenttype",
        "getetag",
        "getlastmodified",
        "lockdiscovery",
        "supportedlock",
    )
)

SUPPORTEDLOCK = "".join(
    f"<D:lockentry><D:lockscope><D:{scope}/></D:lockscope>"
    "<D:locktype><D:write/></D:locktype></D:lockentry>"
    for scope in ("exclusive", "shared")
)


@dataclass(frozen=True, slots=True)
class Resource:
    """One PROPFIND answer: what the href names, the locks covering it and its dead
    properties (``{"{ns}name": element XML}``)."""

    href: str
    entry: Entry
    locks: Sequence[ActiveLock] = ()
    dead: Mapping[str, str] = field(default_factory=dict)
    quota: tuple[int, int] | None = None  # (used, available) bytes: a share with a quota
    md5_etags: bool = False  # a 32-hex-digit ETag is the MD5 of the bytes (see propfind)


# Both dates per entry, cached: a listing of 10,000 objects formatted 20,000 dates, and
# objects written together share their second.
@lru_cache(maxsize=4096)
def _http_date(when: datetime | None) -> str | None:
    return http_date(when.astimezone(UTC)) if when else None


_creationdate = lru_cache(maxsize=4096)(rfc3339)


@lru_cache(maxsize=256)
def _element(name: str, inner: str = "") -> str:
    """``xml.element`` for an empty element, by name: its tag is worked out once."""
    return element(name, inner)


@lru_cache(maxsize=256)
def _tags(name: str) -> tuple[str, str]:
    """The opening and closing tags of ``name``, worked out once per property."""
    opening = element(name, "\0")
    cut = opening.index("\0")
    return opening[:cut], opening[cut + 1:]


def _content_type(entry: Entry) -> str:
    return content_type_of(entry.content_type, entry.name)


def _checksums(resource: Resource) -> str | None:
    """ownCloud's ``oc:checksums`` from what the listing already holds: the MD5 a
    single-part upload's ETag is, on stores where it is one. Nothing is read for it."""
    etag = resource.entry.etag
    match = _MD5_ETAG.match(etag) if etag and resource.md5_etags else None
    if match is None or resource.entry.is_dir:
        return None
    return element(OC + "checksum", f"MD5:{match.group(1)}")


# Each renderer returns the property's inner XML, or None when the resource has no such
# property (it is then reported in the 404 propstat). Collections have no length, type or
# etag, and usually no date: S3 lists a directory as a common prefix, without one. Their
# dates are left out rather than invented (a "now" would change between two listings and
# make clients think the folder changed); an entry that does carry a date shows it.
# Plain lambdas on purpose: a listing of 10,000 calls each of them 10,000 times.
LIVE: dict[str, Callable[[Resource], str | None]] = {
    dav("resourcetype"): lambda r: "<D:collection/>" if r.entry.is_dir else "",
    dav("creationdate"): lambda r: _creationdate(r.entry.last_modified),
    dav("displayname"): lambda r: escape(r.entry.name),
    dav("getcontentlength"): lambda r: None if r.entry.is_dir else str(r.entry.size),
    dav("getcontenttype"): lambda r: None if r.entry.is_dir else
    escape(_content_type(r.entry)),
    dav("getetag"): lambda r: escape(r.entry.etag) if r.entry.etag and not r.entry.is_dir
    else None,
    dav("getlastmodified"): lambda r: _http_date(r.entry.last_modified),
    LOCKDISCOVERY: lambda r: "".join(activelock(lock) for lock in r.locks) if r.locks else "",
    dav("supportedlock"): lambda r: SUPPORTEDLOCK,
    EXECUTABLE: lambda r: None if r.entry.is_dir else "F",
    OC_CHECKSUMS: _checksums,  # never in allprop: asked for by name
    # RFC 4331, on collections of a share with a quota only, and never in allprop.
    dav("quota-used-bytes"): lambda r: str(r.quota[0]) if r.quota else None,
    dav("quota-available-bytes"): lambda r: str(r.quota[1]) if r.quota else None,
}


def names_of(resource: Resource) -> list[str]:
    """Every property the resource has (for propname and allprop): live, then dead."""
    live = [name for name, render in LIVE.items() if render(resource) is not None]
    return [*live, *(name for name in resource.dead if name not in LIVE)]


def activelock(lock: ActiveLock) -> str:
    scope = "exclusive" if lock.exclusive else "shared"
    return (
        "<D:activelock><D:locktype><D:write/></D:locktype>"
        f"<D:lockscope><D:{scope}/></D:lockscope><D:depth>{lock.depth}</D:depth>"
        f"{lock.owner}<D:timeout>Second-{lock.timeout}</D:timeout>"
        f"<D:locktoken><D:href>{escape(lock.token)}</D:href></D:locktoken>"
        f"<D:lockroot><D:href>{escape(lock.root)}</D:href></D:lockroot></D:activelock>"
    )


def propstat(props: Iterable[str], code: int, description: str | None = None) -> str:
    extra = f"<D:responsedescription>{escape(description)}</D:responsedescription>" \
        if description else ""
    return (
        f"<D:propstat><D:prop>{''.join(props)}</D:prop>"
        f"<D:status>{status_line(code)}</D:status>{extra}</D:propstat>"
    )


def response(href: str, propstats: Iterable[str]) -> str:
    return f"<D:response><D:href>{escape(href)}</D:href>{''.join(propstats)}</D:response>"


@dataclass(frozen=True, slots=True)
class _Prop:
    """One asked-for property, everything about writing it worked out once."""

    name: str
    renderer: Callable[[Resource], str | None] | None
    opening: str
    closing: str
    empty: str  # the element without a value: propname, a 404, an empty value


@lru_cache(maxsize=256)
def _plan(names: tuple[str, ...]) -> tuple[_Prop, ...]:
    """``names`` without duplicates (first kept), ready to write: a Depth 1 answer asks
    the same names of every member."""
    return tuple(_Prop(name, LIVE.get(name), *_tags(name), _element(name))
                 for name in dict.fromkeys(names))


_OK = "</D:prop><D:status>" + status_line(200) + "</D:status></D:propstat>"
_MISSING = "</D:prop><D:status>" + status_line(404) + "</D:status></D:propstat>"


def render(resource: Resource, names: Iterable[str], *, values: bool = True,
           known: Mapping[str, str | None] | None = None) -> str:
    """The ``D:response`` for ``names``: found ones in a 200 propstat, the others in a
    404 propstat. With ``values=False`` (propname) only the names are written. ``known``:
    live values the caller has already rendered (allprop renders them to pick names)."""
    found: list[str] = []
    missing: list[str] = []
    dead = resource.dead
    for prop in _plan(names if isinstance(names, tuple) else tuple(names)):
        renderer = prop.renderer
        if renderer is not None:
            value = known[prop.name] if known and prop.name in known else renderer(resource)
            if value is None:
                missing.append(prop.empty)
            elif value and values:
                found.append(prop.opening + value + prop.closing)
            else:
                found.append(prop.empty)
        elif prop.name in dead:
            found.append(dead[prop.name] if values else prop.empty)
        else:
            missing.append(prop.empty)
    head = "<D:response><D:href>" + escape(resource.href) + "</D:href>"
    ok = "<D:propstat><D:prop>" + "".join(found) + _OK if found or not missing else ""
    if not missing:
        return head + ok + "</D:response>"
    return head + ok + "<D:propstat><D:prop>" + "".join(missing) + _MISSING + "</D:response>"
