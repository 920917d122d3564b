"""The WebDAV front-end (RFC 4918 class 1 and 2) as native aiohttp handlers.

GET and HEAD are not here: they are the HTTP front-end's, the same code path as a browser
or curl. The app's method table maps each method to its handler.
"""

from __future__ import annotations

from gateway.webdav.copymove import copy, move
from gateway.webdav.delete import delete
from gateway.webdav.lockmethods import lock, unlock
from gateway.webdav.mkcol import mkcol
from gateway.webdav.options import options_answer
from gateway.webdav.propfind import propfind
from gateway.webdav.proppatch import proppatch
from gateway.webdav.put import put

__all__ = [
    "copy", "delete", "lock", "mkcol", "move", "options_answer", "propfind", "proppatch",
    "put", "unlock",
]
