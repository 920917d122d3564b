"""Versions of one object: ``?versions`` lists them (JSON or HTML), ``?versionId=ID``
names the one a GET or HEAD reads (``objects.get_object``).

The list comes from the store's version listing, newest first, delete markers shown as
such; a store that keeps no versions answers NotSupported (501). The page uses its own
template with the same nonce-based Content-Security-Policy as folder listings.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from gateway.errors import BadRequest, NotFound
from gateway.fs.paths import DavPath
from gateway.fs.share import Share
from gateway.http.listing import human_size, prefers_json, render, row_dates
from gateway.storage.base import ObjectVersion


def version_asked(request: web.Request) -> str | None:
    """The ``versionId`` a GET/HEAD names, or None; an empty one is a bad request."""
    version_id = request.query.get("versionId")
    if version_id is not None and not version_id.strip():
        raise BadRequest("versionId is empty: name a version (see ?versions)")
    return version_id


@dataclass(frozen=True, slots=True)
class VersionRow:
    version_id: str
    latest: bool
    deleted: bool
    size: int
    size_text: str
    etag: str | None
    iso: str
    title: str
    href: str

    @classmethod
    def of(cls, version: ObjectVersion, href: str, latest: bool) -> VersionRow:
        iso, _, _, title = row_dates(version.last_modified)
        return cls(
            version_id=version.version_id,
            latest=latest,
            deleted=version.deleted,
            size=version.size,
            size_text=human_size(version.size),
            etag=None if version.deleted else version.etag,
            iso=iso,
            title=title,
            href=f"{href}?versionId={quote(version.version_id, safe='')}",
        )

    def json(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "latest": self.latest,
            "delete_marker": self.deleted,
            "size": None if self.deleted else self.size,
            "etag": self.etag,
            "modified": self.iso,
            "href": None if self.deleted else self.href,
        }


async def serve_versions(request: web.Request, share: Share, path: DavPath) -> web.StreamResponse:
    """GET/HEAD ``path?versions``: the object's versions, newest first."""
    found = await share.view.versions(share.key(path))
    if not found:
        raise NotFound(f"{share.href(path)} has no versions")
    href = share.href(path)
    # The newest entry is the current state (on an as_of share: the state then).
    rows = [VersionRow.of(v, href, i == 0) for i, v in enumerate(found)]
    headers = {"Vary": "Accept", "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if prefers_json(request.headers.get("Accept"), request.query.get("format")):
        body = json.dumps({"path": href, "versions": [r.json() for r in rows]}) + "\n"
        resp = web.Response(text=body, content_type="application/json", headers=headers)
    else:
        nonce = secrets.token_urlsafe(16)
        headers["Content-Security-Policy"] = (
            f"default-src 'none'; style-src 'nonce-{nonce}'; img-src data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        page = render("versions.html", title=href, name=path.name, versions=rows,
                      parent=share.href(path.parent), parent_label=share.href(path.parent),
                      nonce=nonce)
        resp = web.Response(text=page, content_type="text/html", charset="utf-8",
                            headers=headers)
    return resp  # aiohttp sends no body for HEAD
