"""The request sequences of macOS Finder and the Windows Mini-Redirector, replayed.

Each sequence is the one ../shared/CLIENTS.md records for that client (copy-in, new
folder, new document, save), sent as raw requests to a real gateway over moto in its
DEFAULT mode, every step's status checked. Passing these is what lets those clients
work without --allow-overwrite.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest

from tests.compat.conftest import StartGateway
from tests.gatewayproc import GatewayProcess

APPLE_OWNER = (
    '<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
    "<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
    "<D:owner><D:href>http://www.apple.com/webdav_fs/</D:href></D:owner></D:lockinfo>"
)
WINDOWS_LOCK = (
    '<?xml version="1.0" encoding="utf-8" ?><D:lockinfo xmlns:D="DAV:">'
    "<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
    "<D:owner><D:href>DOMAIN\\person</D:href></D:owner></D:lockinfo>"
)
WIN32_PROPPATCH = (
    '<?xml version="1.0" encoding="utf-8" ?>'
    '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>'
    "<Z:Win32CreationTime>Sat, 21 Nov 2026 10:00:00 GMT</Z:Win32CreationTime>"
    "<Z:Win32LastAccessTime>Sat, 21 Nov 2026 10:00:00 GMT</Z:Win32LastAccessTime>"
    "<Z:Win32LastModifiedTime>Sat, 21 Nov 2026 10:00:00 GMT</Z:Win32LastModifiedTime>"
    "<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>"
    "</D:prop></D:set></D:propertyupdate>"
)
PROPFIND_ETAG = (
    '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>'
    "<D:getlastmodified/><D:getetag/></D:prop></D:propfind>"
)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class Client:
    def __init__(self, gateway: GatewayProcess, user_agent: str) -> None:
        parts = urlsplit(gateway.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.user_agent = user_agent

    def __call__(
        self,
        method: str,
        path: str,
        body: bytes | str | Iterable[bytes] | None = None,
        **headers: str,
    ) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        hdrs = {"User-Agent": self.user_agent}
        hdrs.update({k.replace("_", "-"): v for k, v in headers.items()})
        data = body.encode() if isinstance(body, str) else body
        chunked = data is not None and not isinstance(data, bytes)
        try:
            conn.request(method, path, body=data, headers=hdrs, encode_chunked=chunked)
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read())
        finally:
            conn.close()


def href(name: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in name.split("/"))


def lock_token(reply: Reply) -> str:
    token = reply.headers["Lock-Token"]
    assert token and token.startswith("<") and token.endswith(">"), token
    assert token[1:-1].encode() in reply.body, "the body's activelock must carry the token"
    return token


def finder_copy_in(dav: Client, name: str, data: bytes) -> None:
    """Finder: 0-byte PUT, LOCK, streamed PUT under the lock, PROPFIND, UNLOCK."""
    path = href(name)
    assert dav("PROPFIND", path, Depth="0").status == 404
    assert dav("PUT", path, b"").status == 201
    locked = dav("LOCK", path, APPLE_OWNER, Depth="0", Timeout="Second-600",
                 Content_Type="text/xml; charset=utf-8")
    assert locked.status == 200, locked.body
    assert b"http://www.apple.com/webdav_fs/" in locked.body
    token = lock_token(locked)
    pieces = [data[i : i + 65536] for i in range(0, len(data), 65536)] or [b""]
    put = dav("PUT", path, iter(pieces), If=f"({token})",
              X_Expected_Entity_Length=str(len(data)))
    assert put.status in (201, 204), put.body
    props = dav("PROPFIND", path, PROPFIND_ETAG, Depth="0", Content_Type="text/xml")
    assert props.status == 207
    assert put.headers["ETag"].encode() in props.body
    assert dav("UNLOCK", path, Lock_Token=token).status == 204


@pytest.mark.compat
def test_finder_copy_in_new_folder_and_rename(moto_gateway: StartGateway) -> None:
    gateway = moto_gateway()
    dav = Client(gateway, "WebDAVFS/3.0.0 (03008000) Darwin/23.0.0 (arm64)")
    assert "2" in dav("OPTIONS", "/").headers["DAV"]
    for probe in ("/.DS_Store", "/._.", "/.localized", "/.metadata_never_index",
                  "/.ql_disablethumbnails", "/Backups.backupdb", "/.Spotlight-V100"):
        assert dav("PROPFIND", probe, Depth="0").status == 404, probe
    body = bytes(range(256)) * 4000
    finder_copy_in(dav, "photo one.jpg", body)
    finder_copy_in(dav, "._photo one.jpg", b"\x00\x05\x16\x07AppleDouble")
    got = dav("GET", href("photo one.jpg"))
    assert (got.status, got.body) == (200, body)
    listing = dav("GET", "/?format=json").body
    assert b"photo one.jpg" in listing and b"._photo" not in listing
    # New Folder: MKCOL "untitled folder", then MOVE without an Overwrite header.
    assert dav("MKCOL", href("untitled folder")).status == 201
    moved = dav("MOVE", href("untitled folder"),
                Destination=gateway.url + href("Holiday Photos") + "/")
    assert moved.status == 201, moved.body
    assert dav("PROPFIND", href("Holiday Photos") + "/", Depth="0").status == 207
    assert dav("PROPFIND", href("untitled folder") + "/", Depth="0").status == 404
    # Renaming a file with data needs --allow-rename: refused, clearly, and nothing moves.
    refused = dav("MOVE", href("photo one.jpg"), Destination=gateway.url + href("renamed.jpg"))
    assert refused.status == 403 and b"--allow-rename" in refused.body
    assert dav("GET", href("photo one.jpg")).body == body


@pytest.mark.compat
def test_windows_copy_in_new_folder_and_new_document(moto_gateway: StartGateway) -> None:
    gateway = moto_gateway()
    dav = Client(gateway, "Microsoft-WebDAV-MiniRedir/10.0.19045")
    assert dav("OPTIONS", "/").status == 200
    assert dav("PROPFIND", "/", Depth="0").status == 207
    path = href("report.docx")
    data = b"PK\x03\x04" + bytes(100_000)
    assert dav("PROPFIND", path, Depth="0").status == 404
    assert dav("PUT", path, b"").status == 201
    locked = dav("LOCK", path, WINDOWS_LOCK, Timeout="Second-3600",
                 Content_Type="text/xml; charset=utf-8")
    assert locked.status == 200, locked.body
    token = lock_token(locked)
    patched = dav("PROPPATCH", path, WIN32_PROPPATCH, If=f"({token})", Content_Type="text/xml")
    assert patched.status == 207
    assert len(re.findall(rb"200 OK", patched.body)) >= 1
    assert b"403" not in patched.body and b"424" not in patched.body
    assert dav("HEAD", path).status == 200
    assert dav("PUT", path, data, If=f"({token})").status in (201, 204)
    assert dav("PROPPATCH", path, WIN32_PROPPATCH, If=f"({token})",
               Content_Type="text/xml").status == 207
    assert dav("UNLOCK", path, Lock_Token=token).status == 204
    assert dav("GET", path).body == data
    # New folder: MKCOL then MOVE.
    assert dav("MKCOL", href("New folder")).status == 201
    assert dav("MOVE", href("New folder"), Destination=gateway.url + href("Reports")).status == 201
    # New Text Document.txt: PUT (empty) then MOVE with Overwrite: F.
    assert dav("PUT", href("New Text Document.txt"), b"").status == 201
    renamed = dav("MOVE", href("New Text Document.txt"),
                  Destination=gateway.url + href("notes.txt"), Overwrite="F")
    assert renamed.status == 201
    # desktop.ini and Thumbs.db are accepted and kept out of the bucket.
    assert dav("PUT", href("Reports/desktop.ini"), b"[.ShellClassInfo]").status == 201
    assert b"desktop.ini" not in dav("GET", "/Reports/?format=json").body


@pytest.mark.compat
def test_save_over_an_existing_document_needs_allow_overwrite(
    moto_gateway: StartGateway,
) -> None:
    strict = Client(moto_gateway(), "Microsoft-WebDAV-MiniRedir/10.0.19045")
    assert strict("PUT", "/doc.txt", b"version 1").status == 201
    refused = strict("PUT", "/doc.txt", b"version 2")
    assert refused.status in (403, 412) and b"--allow-overwrite" in refused.body
    assert strict("GET", "/doc.txt").body == b"version 1"
    lenient = Client(moto_gateway("--allow-overwrite"), "Microsoft-WebDAV-MiniRedir/10.0.19045")
    assert lenient("PUT", "/doc.txt", b"version 1").status == 201
    locked = lenient("LOCK", "/doc.txt", WINDOWS_LOCK, Timeout="Second-3600")
    token = lock_token(locked)
    assert lenient("PUT", "/doc.txt", b"version 2", If=f"({token})").status == 204
    assert lenient("UNLOCK", "/doc.txt", Lock_Token=token).status == 204
    assert lenient("GET", "/doc.txt").body == b"version 2"
