"""The WebDAV front-end (RFC 4918 class 1 and 2) as native aiohttp handlers.

``HANDLERS`` maps each method to its handler; GET and HEAD are not here: they are the
HTTP front-end's, the same code path as a browser or curl.
"""

from __future__ import annotations

from gateway.webdav.content import HANDLERS as CONTENT_HANDLERS
from gateway.webdav.errors import STATUS
from gateway.webdav.metadata import HANDLERS as METADATA_HANDLERS

HANDLERS = {**METADATA_HANDLERS, **CONTENT_HANDLERS}

__all__ = ["HANDLERS", "STATUS"]
