"""Directory listings for browsers (HTML) and programs (JSON), streamed page by page.

A folder can hold millions of keys, so nothing here holds a whole listing: the page head
goes out at once, rows follow in batches as the store's listing pages arrive, and the
counts come last. Rows therefore arrive in store order; the page's script puts
directories first once the document is complete. Every name is untrusted text: the
templates autoescape, links are percent-encoded, and a nonce-based Content-Security-Policy
keeps anything that slipped through from running.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined

from gateway.errors import NotFound
from gateway.fs.listing import Entry, Listing, member_href, open_dir
from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.responses import batches, content_type_of, rfc3339, send_streamed

BATCH = 200  # rows rendered and written together: few writes, yet the page fills steadily

_ENV = Environment(
    loader=PackageLoader("gateway.http", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")
_HTML_SPECIAL = re.compile("[&<>'\"]")


# ---- pure helpers ----------------------------------------------------------------------


def human_size(size: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.0 GiB``: binary units, one decimal."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    index = 0
    # Round first, so 1048575 bytes reads "1.0 MiB" rather than "1024.0 KiB".
    while round(value, 1) >= 1024 and index < len(_UNITS) - 1:
        value /= 1024
        index += 1
    return f"{value:.1f} {_UNITS[index]}"


def _accept_q(accept: str, media_type: str) -> tuple[float, int]:
    """The q-value ``accept`` gives ``media_type`` (the most specific range decides), and
    how specifically it was named: 2 exactly, 1 as ``type/*``, 0 through ``*/*``."""
    main = media_type.split("/", 1)[0]
    best_rank, best_q = -1, 0.0
    for item in accept.split(","):
        fields = item.strip().split(";")
        rng = fields[0].strip().lower()
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        if rng == media_type:
            rank = 2
        elif rng == main + "/*":
            rank = 1
        elif rng == "*/*":
            rank = 0
        else:
            continue
        if rank > best_rank:
            best_rank, best_q = rank, q
    return best_q, best_rank


def prefers_json(accept: str | None, format_param: str | None = None) -> bool:
    """JSON when asked by ``?format=json`` or when Accept ranks JSON above HTML. Equal
    q-values go to the type the client named explicitly (``application/json, */*`` is a
    program asking for JSON); a full tie (``*/*``, no header) gets HTML."""
    if format_param is not None:
        return format_param.strip().lower() == "json"
    if not accept:
        return False
    json_q, json_rank = _accept_q(accept, "application/json")
    html_q, html_rank = _accept_q(accept, "text/html")
    return json_q > 0 and (json_q, json_rank) > (html_q, html_rank)


def entry_json(entry: Entry, href: str) -> dict[str, Any]:
    return {
        "name": entry.name,
        "type": "directory" if entry.is_dir else "file",
        "size": 0 if entry.is_dir else entry.size,
        "modified": row_dates(entry.last_modified)[0] or None,
        "etag": None if entry.is_dir else entry.etag,
        # What a GET of the entry would say; directories have none.
        "content_type": (
            None if entry.is_dir else content_type_of(entry.content_type, entry.name)
        ),
        "href": href,
    }


@dataclass(frozen=True, slots=True)
class Row:
    """One table row, everything already formatted (the template only prints)."""

    name: str
    href: str
    is_dir: bool
    size: int
    size_text: str
    iso: str  # "" when unknown
    date: str
    time: str
    title: str

    @classmethod
    def of(cls, entry: Entry, href: str) -> Row:
        return cls(entry.name, href, entry.is_dir, -1 if entry.is_dir else entry.size,
                   "" if entry.is_dir else human_size(entry.size),
                   *row_dates(entry.last_modified))


@lru_cache(maxsize=4096)
def row_dates(when: datetime | None) -> tuple[str, str, str, str]:
    """A row's iso, date, time and title; cached, as objects written together share
    their second."""
    if when is None:
        return "", "", "", ""
    when = when.astimezone(UTC)
    return (rfc3339(when) or "", when.strftime("%Y-%m-%d"), when.strftime("%H:%M"),
            when.strftime("%Y-%m-%d %H:%M:%S UTC"))


def _html(text: str) -> str:
    """Jinja's autoescape (markupsafe) of one value, as plain string replaces: a row's
    values went through Markup objects a dozen times per row. Most need none."""
    if _HTML_SPECIAL.search(text) is None:
        return text
    return (text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")
            .replace("'", "&#39;").replace('"', "&#34;"))


def row_html(row: Row) -> str:
    """One ``<tr>`` of the table (the template once did it: the same bytes, a fraction of
    the time on a folder of 10,000)."""
    name = _html(row.name)
    if row.is_dir:
        kind, slash, size = "dir", '<span class="slash">/</span>', '<span class="none">—</span>'
    else:
        unit = "byte" if row.size == 1 else "bytes"
        kind, slash = "file", ""
        size = f'<span title="{row.size} {unit}">{_html(row.size_text)}</span>'
    if row.iso:
        modified = (f'<time datetime="{_html(row.iso)}" title="{_html(row.title)}">'
                    f'{_html(row.date)}<span class="hm"> {_html(row.time)}</span></time>')
    else:
        modified = '<span class="none">—</span>'
    return (f'<tr class="{kind}" data-name="{name}" data-size="{row.size}" '
            f'data-mtime="{_html(row.iso)}"><td class="name"><a href="{_html(row.href)}">'
            '<span class="icon" aria-hidden="true"></span>'
            f'<span class="label">{name}{slash}</span></a></td><td class="size">{size}</td>'
            f'<td class="modified">{modified}</td></tr>\n')


@dataclass(frozen=True, slots=True)
class Crumb:
    label: str
    href: str


def breadcrumbs(share: Share, path: DavPath, root_label: str) -> list[Crumb]:
    """The share root, then every ancestor and the directory itself."""
    crumbs = [Crumb(root_label, share.href(DavPath((), True)))]
    for i in range(len(path.parts)):
        crumbs.append(Crumb(path.parts[i], share.href(DavPath(path.parts[: i + 1], True))))
    return crumbs


def display_path(share: Share, path: DavPath) -> str:
    """The decoded URL path of a directory, mount included: ``/a b/c/``."""
    return "/" + "".join(p + "/" for p in (*share.mount_parts, *path.parts))


# ---- the handler -----------------------------------------------------------------------


async def serve_listing(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    """GET/HEAD on a directory: an HTML page, or JSON when the client asks for it. A GET's
    first listing page also says whether the directory exists (``open_dir``)."""
    entries = await open_dir(share, path) if request.method != "HEAD" else \
        share.listdir(path) if await share.is_dir(path) else None
    if entries is None:
        raise NotFound(f"{share.href(path, is_dir=True)} does not exist")
    as_json = prefers_json(request.headers.get("Accept"), request.query.get("format"))
    resp = web.StreamResponse(status=200)
    resp.headers["Vary"] = "Accept"
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    nonce = secrets.token_urlsafe(16)
    if as_json:
        resp.content_type = "application/json"
    else:
        resp.content_type = "text/html"
        resp.charset = "utf-8"
        resp.headers["Content-Security-Policy"] = (
            f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
            "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    if request.method == "HEAD":
        return await send_streamed(request, resp, None)
    body = _json_body(share, path, entries) if as_json else \
        _html_body(request, share, path, nonce, entries)
    return await send_streamed(request, resp, _encoded(body))


async def _encoded(pieces: AsyncGenerator[str, None]) -> AsyncGenerator[bytes, None]:
    try:
        async for piece in pieces:
            yield piece.encode("utf-8")
    finally:
        await pieces.aclose()


def _batches(entries: AsyncIterator[Entry]) -> AsyncIterator[list[Entry]]:
    """Rows rendered and written together: a listing page's worth, as it comes."""
    return entries.batches() if isinstance(entries, Listing) else batches(entries, BATCH)


async def _json_body(share: Share, path: DavPath, entries: AsyncIterator[Entry]
                     ) -> AsyncGenerator[str, None]:
    head = json.dumps({"path": display_path(share, path)})
    yield head[:-1] + ', "entries": ['
    first = True
    base = share.href(path, is_dir=True)
    async for batch in _batches(entries):
        parts: list[str] = []
        for entry in batch:
            parts.append(("\n" if first else ",\n") + json.dumps(
                entry_json(entry, member_href(base, entry))
            ))
            first = False
        yield "".join(parts)
    yield "\n]}\n"


def render(template: str, **context: Any) -> str:
    """``template`` (from gateway/http/templates) filled in, autoescaped."""
    return _ENV.get_template(template).render(**context)


async def _html_body(
    request: web.Request, share: Share, path: DavPath, nonce: str,
    entries: AsyncIterator[Entry],
) -> AsyncGenerator[str, None]:
    title = display_path(share, path)
    crumbs = breadcrumbs(share, path, share.mount_parts[-1] if share.mount_parts else request.host)
    parent = share.href(path.parent) if not path.is_root else None
    yield render("head.html", title=title, crumbs=crumbs, parent=parent, nonce=nonce)
    dirs = files = total = 0
    base = share.href(path, is_dir=True)
    async for batch in _batches(entries):
        rows = [Row.of(entry, member_href(base, entry)) for entry in batch]
        for row in rows:
            if row.is_dir:
                dirs += 1
            else:
                files += 1
                total += row.size
        yield "".join(row_html(row) for row in rows)
    yield render(
        "foot.html", dirs=dirs, files=files, total=human_size(total), count=dirs + files
    )
