"""The request sequences of macOS Finder and the Windows Mini-Redirector, replayed.

Each sequence is the one ../shared/CLIENTS.md records for that client (copy-in, new
folder, new document, save), sent as raw requests to a real gateway over moto in its
DEFAULT mode, every step's status checked, and what each step did checked in the bucket
itself (listed with a plain S3 client, never through the gateway, whose own listings hide
client noise anyway). Passing these is what lets those clients work without
--allow-overwrite.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.gatewayproc import GatewayProcess, running_gateway
from tests.servers import client, create_bucket
from tests.webdav.davxml import multistatus

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
WIN32_PROPERTIES = ("Win32CreationTime", "Win32LastAccessTime", "Win32LastModifiedTime",
                    "Win32FileAttributes")
PROPFIND_ETAG = (
    '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>'
    "<D:getlastmodified/><D:getetag/></D:prop></D:propfind>"
)


@dataclass
class Bucket:
    """The bucket a gateway serves, read directly with a plain S3 client."""

    endpoint: str
    name: str

    def objects(self) -> dict[str, bytes]:
        """Every key in the bucket with its bytes."""
        s3: Any = client(self.endpoint)
        found: dict[str, bytes] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.name):
            for item in page.get("Contents", []):
                found[item["Key"]] = s3.get_object(Bucket=self.name, Key=item["Key"])["Body"].read()
        return found


StartGateway = Callable[..., tuple[GatewayProcess, Bucket]]


@pytest.fixture
def moto_gateway(moto_server: str) -> Iterator[StartGateway]:
    """``start(*flags) -> (gateway, bucket)``: a gateway with those flags over a fresh
    moto bucket, and that bucket to inspect."""
    with ExitStack() as stack:

        def start(*flags: str) -> tuple[GatewayProcess, Bucket]:
            bucket = create_bucket(moto_server)
            gateway = stack.enter_context(
                running_gateway(f"s3://{bucket}", "--endpoint-url", moto_server, *flags)
            )
            return gateway, Bucket(moto_server, bucket)

        yield start


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class Client:
    """Raw requests to ``url``: a gateway, or a share's URL under it (a balancer in
    front), whose path then prefixes every request path."""

    def __init__(self, gateway: GatewayProcess | str, user_agent: str) -> None:
        url = gateway if isinstance(gateway, str) else gateway.url
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.base = parts.path.rstrip("/")
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
            conn.request(method, self.base + path, body=data, headers=hdrs, encode_chunked=chunked)
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
    assert put.status == 204, put.body  # the zero-byte placeholder is replaced
    props = dav("PROPFIND", path, PROPFIND_ETAG, Depth="0", Content_Type="text/xml")
    assert props.status == 207
    assert put.headers["ETag"].encode() in props.body
    assert dav("UNLOCK", path, Lock_Token=token).status == 204


@pytest.mark.compat
def test_finder_copy_in_new_folder_and_rename(moto_gateway: StartGateway) -> None:
    gateway, bucket = moto_gateway()
    finder_replay(gateway.url, bucket)


def finder_replay(url: str, bucket: Bucket) -> None:
    """Finder on a default-mode gateway (or share) at ``url`` serving the empty ``bucket``."""
    dav = Client(url, "WebDAVFS/3.0.0 (03008000) Darwin/23.0.0 (arm64)")
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
    # The AppleDouble file is held by the gateway, never written to the bucket.
    assert bucket.objects() == {"photo one.jpg": body}
    # New Folder: MKCOL "untitled folder", then MOVE without an Overwrite header.
    assert dav("MKCOL", href("untitled folder")).status == 201
    assert bucket.objects() == {"photo one.jpg": body, "untitled folder/": b""}
    moved = dav("MOVE", href("untitled folder"),
                Destination=url + href("Holiday Photos") + "/")
    assert moved.status == 201, moved.body
    assert dav("PROPFIND", href("Holiday Photos") + "/", Depth="0").status == 207
    assert dav("PROPFIND", href("untitled folder") + "/", Depth="0").status == 404
    assert bucket.objects() == {"photo one.jpg": body, "Holiday Photos/": b""}
    # Renaming a file with data needs --allow-rename: refused, clearly, and nothing moves.
    refused = dav("MOVE", href("photo one.jpg"), Destination=url + href("renamed.jpg"))
    assert refused.status == 403 and b"--allow-rename" in refused.body
    assert dav("GET", href("photo one.jpg")).body == body
    assert bucket.objects() == {"photo one.jpg": body, "Holiday Photos/": b""}


@pytest.mark.compat
def test_windows_copy_in_new_folder_and_new_document(moto_gateway: StartGateway) -> None:
    gateway, bucket = moto_gateway()
    windows_replay(gateway.url, bucket)


def windows_replay(url: str, bucket: Bucket) -> None:
    """Windows on a default-mode gateway (or share) at ``url`` serving the empty ``bucket``."""
    dav = Client(url, "Microsoft-WebDAV-MiniRedir/10.0.19045")
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
    assert_each_win32_property_is_200(patched)
    assert b"403" not in patched.body and b"424" not in patched.body
    assert dav("HEAD", path).status == 200
    assert dav("PUT", path, data, If=f"({token})").status == 204  # the placeholder is replaced
    repatched = dav("PROPPATCH", path, WIN32_PROPPATCH, If=f"({token})", Content_Type="text/xml")
    assert repatched.status == 207
    assert_each_win32_property_is_200(repatched)
    assert dav("UNLOCK", path, Lock_Token=token).status == 204
    assert dav("GET", path).body == data
    assert bucket.objects() == {"report.docx": data}
    # New folder: MKCOL then MOVE.
    assert dav("MKCOL", href("New folder")).status == 201
    assert dav("MOVE", href("New folder"), Destination=url + href("Reports")).status == 201
    assert bucket.objects() == {"report.docx": data, "Reports/": b""}
    # New Text Document.txt: PUT (empty) then MOVE with Overwrite: F.
    assert dav("PUT", href("New Text Document.txt"), b"").status == 201
    renamed = dav("MOVE", href("New Text Document.txt"),
                  Destination=url + href("notes.txt"), Overwrite="F")
    assert renamed.status == 201
    assert bucket.objects() == {"report.docx": data, "Reports/": b"", "notes.txt": b""}
    # desktop.ini and Thumbs.db are accepted and kept out of the bucket.
    assert dav("PUT", href("Reports/desktop.ini"), b"[.ShellClassInfo]").status == 201
    assert dav("PUT", href("Reports/Thumbs.db"), b"\xd0\xcf\x11\xe0").status == 201
    assert b"desktop.ini" not in dav("GET", "/Reports/?format=json").body
    assert bucket.objects() == {"report.docx": data, "Reports/": b"", "notes.txt": b""}


def assert_each_win32_property_is_200(reply: Reply) -> None:
    """Windows fails the copy unless every property it set has its own 200."""
    [answer] = multistatus(reply.body).values()
    assert answer.by_status.keys() == {200}, answer.by_status
    assert set(answer.ok()) == {f"{{urn:schemas-microsoft-com:}}{name}"
                                for name in WIN32_PROPERTIES}


@pytest.mark.compat
def test_save_over_an_existing_document_needs_allow_overwrite(
    moto_gateway: StartGateway,
) -> None:
    gateway, bucket = moto_gateway()
    strict = Client(gateway, "Microsoft-WebDAV-MiniRedir/10.0.19045")
    assert strict("PUT", "/doc.txt", b"version 1").status == 201
    refused = strict("PUT", "/doc.txt", b"version 2")
    # docs/SEMANTICS.md: PUT onto an existing object is 403 in default mode (412 is for
    # failed preconditions, and this request carries none).
    assert refused.status == 403 and b"--allow-overwrite" in refused.body
    assert strict("GET", "/doc.txt").body == b"version 1"
    assert bucket.objects() == {"doc.txt": b"version 1"}
    gateway, bucket = moto_gateway("--allow-overwrite")
    lenient = Client(gateway, "Microsoft-WebDAV-MiniRedir/10.0.19045")
    assert lenient("PUT", "/doc.txt", b"version 1").status == 201
    locked = lenient("LOCK", "/doc.txt", WINDOWS_LOCK, Timeout="Second-3600")
    token = lock_token(locked)
    assert lenient("PUT", "/doc.txt", b"version 2", If=f"({token})").status == 204
    assert lenient("UNLOCK", "/doc.txt", Lock_Token=token).status == 204
    assert lenient("GET", "/doc.txt").body == b"version 2"
    assert bucket.objects() == {"doc.txt": b"version 2"}
