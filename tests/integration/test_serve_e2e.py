"""End to end: a real ``bucketdav serve`` process over a real S3 server, read with curl.

Each test runs against moto (S3 API behaviour) and s3rver (a real server that serves
ranges from disk). The gateway reaches the store through a TCP forwarder that counts
the bytes sent to it, so "the request never reached the store" is observed, not assumed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from tests.curlhttp import curl, curl_status
from tests.gatewayproc import GatewayProcess, running_gateway
from tests.servers import S3RVER_PROFILE, client, create_bucket
from tests.tcpcount import Counter, counting_proxy

ODD_NAMES = [
    "space name.txt",
    "hash#tag.txt",
    "question?mark.txt",
    "percent%41.txt",
    "plus+sign.txt",
    "amp&ersand.txt",
    "quotes\"'.txt",
    "emoji-\U0001f600.txt",
    unicodedata.normalize("NFC", "café-nfc.txt"),
    unicodedata.normalize("NFD", "café-nfd.txt"),
    "<b>markup&amp;.txt",
]
BODY = bytes(range(256)) * 40  # 10,240 bytes, every byte value


@dataclass
class Served:
    gateway: GatewayProcess
    store: Counter
    etags: dict[str, str]

    def url(self, name: str) -> str:
        return self.gateway.url + "/" + "/".join(quote(p, safe="") for p in name.split("/"))


@pytest.fixture(params=["moto", "s3rver"], scope="module")
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    backend = request.param
    endpoint: str = request.getfixturevalue("moto_server" if backend == "moto" else "s3rver")
    profile = S3RVER_PROFILE if backend == "s3rver" else None
    bucket = create_bucket(endpoint, profile=profile)
    s3 = client(endpoint, profile)
    etags: dict[str, str] = {}
    for name in [*ODD_NAMES, "dir/sub/deep.bin", "dir/file.bin", "data.bin"]:
        resp: Any = s3.put_object(Bucket=bucket, Key=f"share/{name}", Body=BODY)
        etags[name] = resp["ETag"]
    s3.put_object(Bucket=bucket, Key="outside.txt", Body=b"not in the share")
    extra = ["--profile", profile] if profile else []
    with counting_proxy(endpoint) as counter, running_gateway(
        f"s3://{bucket}/share", "--endpoint-url", counter.url, "--force-path-style", *extra
    ) as gateway:
        yield Served(gateway, counter, etags)


def test_full_get_returns_the_exact_bytes_and_validators(served: Served) -> None:
    status, headers, body = curl_status(served.url("data.bin"))
    assert status == 200
    assert body == BODY
    assert headers["content-length"] == str(len(BODY))
    assert headers["etag"] == served.etags["data.bin"]
    assert headers["accept-ranges"] == "bytes"
    assert headers["last-modified"].endswith("GMT")
    assert headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [("0-99", 0, 100), ("-500", len(BODY) - 500, len(BODY)), ("100-", 100, len(BODY)),
     ("10239-20000", 10239, 10240)],
)
def test_single_ranges(served: Served, spec: str, start: int, end: int) -> None:
    status, headers, body = curl_status("-r", spec, served.url("data.bin"))
    assert status == 206
    assert body == BODY[start:end]
    assert headers["content-range"] == f"bytes {start}-{end - 1}/{len(BODY)}"
    assert headers["content-length"] == str(end - start)


def test_several_ranges_are_multipart_byteranges(served: Served) -> None:
    status, headers, body = curl_status("-r", "0-0,10-20", served.url("data.bin"))
    assert status == 206
    ctype = headers["content-type"]
    assert ctype.startswith("multipart/byteranges; boundary=")
    boundary = ctype.split("boundary=")[1].encode()
    assert int(headers["content-length"]) == len(body)
    parts = body.split(b"--" + boundary)
    assert parts[-1] == b"--\r\n"
    payloads = []
    for part in parts[1:-1]:
        head, _, data = part.partition(b"\r\n\r\n")
        assert b"Content-Type: application/octet-stream" in head
        payloads.append((head.split(b"Content-Range: ")[1].split(b"\r\n")[0], data[:-2]))
    assert payloads == [
        (b"bytes 0-0/10240", BODY[0:1]),
        (b"bytes 10-20/10240", BODY[10:21]),
    ]


def test_unsatisfiable_range_is_416_with_the_size(served: Served) -> None:
    status, headers, _ = curl_status("-r", "20000-", served.url("data.bin"))
    assert status == 416
    assert headers["content-range"] == f"bytes */{len(BODY)}"


def test_conditionals(served: Served) -> None:
    url, etag = served.url("data.bin"), served.etags["data.bin"]
    assert curl_status("-H", f"If-None-Match: {etag}", url)[0] == 304
    assert curl_status("-H", 'If-Match: "nope"', url)[0] == 412
    assert curl_status("-H", f"If-Match: {etag}", url)[0] == 200
    _, headers, _ = curl_status(url)
    lm = headers["last-modified"]
    assert curl_status("-H", f"If-Modified-Since: {lm}", url)[0] == 304
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert curl_status("-H", f"If-Unmodified-Since: {old}", url)[0] == 412


def test_if_range_by_etag(served: Served) -> None:
    url, etag = served.url("data.bin"), served.etags["data.bin"]
    status, _, body = curl_status("-r", "5-9", "-H", f"If-Range: {etag}", url)
    assert (status, body) == (206, BODY[5:10])
    status, _, body = curl_status("-r", "5-9", "-H", 'If-Range: "stale"', url)
    assert (status, body) == (200, BODY)


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_round_trip(served: Served, name: str) -> None:
    status, _, body = curl_status(served.url(name))
    assert status == 200, name
    assert body == BODY


def test_json_listing_names_every_entry(served: Served) -> None:
    result = curl("-H", "Accept: application/json", served.gateway.url + "/")
    listing = json.loads(result.stdout)
    names = {e["name"]: e for e in listing["entries"]}
    assert set(names) == {*ODD_NAMES, "dir", "data.bin"}
    assert names["dir"]["type"] == "directory"
    assert names["data.bin"]["size"] == len(BODY)
    sub = json.loads(curl(served.gateway.url + "/dir/?format=json").stdout)
    assert {e["name"] for e in sub["entries"]} == {"sub", "file.bin"}


def test_html_listing_escapes_names(served: Served) -> None:
    status, headers, body = curl_status(served.gateway.url + "/")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    page = body.decode()
    assert "&lt;b&gt;markup&amp;amp;.txt" in page
    assert "<b>markup" not in page
    assert quote("space name.txt", safe="") in page


def test_directory_without_slash_redirects(served: Served) -> None:
    status, headers, _ = curl_status(served.gateway.url + "/dir")
    assert status == 301
    assert headers["location"] == "/dir/"


def test_missing_key_is_a_plain_404(served: Served) -> None:
    status, headers, body = curl_status(served.url("nope.txt"))
    assert status == 404
    assert headers["content-type"].startswith("text/plain")
    assert b"Traceback" not in body and body.strip()


@pytest.mark.parametrize(
    "target",
    [
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/%2E%2e/outside.txt",
        "/dir/..%2F..%2Foutside.txt",
        "/dir/%2e%2e/%2e%2e/outside.txt",
        "/..%5Coutside.txt",
        "/dir\\..\\..\\outside.txt",
        "/data.bin%00",
        "/a//b",
    ],
)
def test_traversal_and_nul_get_400_and_never_reach_the_store(served: Served, target: str) -> None:
    before = served.store.to_server
    status, _, body = curl_status(served.gateway.url + target)
    assert status == 400, target
    assert body.strip() and b"Traceback" not in body
    assert served.store.to_server == before


def test_ten_thousand_ranges_are_refused_without_touching_the_store(served: Served) -> None:
    before = served.store.to_server
    ranges = ",".join(f"{i * 2}-{i * 2}" for i in range(10_000))
    status, _, body = curl_status("-r", ranges, served.url("data.bin"))
    assert status == 400  # a header past --max-header-bytes, or past --max-ranges: both 400
    assert body.strip()
    assert served.store.to_server == before


def test_hundred_kilobyte_url_is_refused_without_touching_the_store(served: Served) -> None:
    before = served.store.to_server
    status, _, body = curl_status(served.gateway.url + "/" + "a" * 100_000)
    assert status == 400  # past --max-url-bytes; aiohttp's parser cannot send 414 (OPERATIONS)
    assert body.strip()
    assert served.store.to_server == before


# ---- startup failures: one clear line and exit status 2 (README, "Serving a real bucket") ----


def test_a_missing_bucket_fails_fast_with_one_clear_line(moto_server: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "s3://no-such-bucket-here",
         "--endpoint-url", moto_server, "--port", "0"],
        capture_output=True, text=True, timeout=60, env={**os.environ},
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "no-such-bucket-here" in lines[0]
    assert moto_server in lines[0]
    assert "serving" not in proc.stdout


def test_an_unreachable_endpoint_fails_fast(tmp_path: Any) -> None:
    from tests.servers import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "s3://bucket", "--endpoint-url", endpoint,
         "--port", "0"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert endpoint in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "serving" not in proc.stdout


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--port", "not-a-port"], {}, "--port"),  # refused by the option's type
        (["--max-ranges", "0"], {}, "--max-ranges"),  # refused by the settings' checks
        ([], {"BUCKETDAV_PORT": "not-a-port"}, "BUCKETDAV_PORT"),  # an environment variable
    ],
)
def test_a_bad_option_value_exits_with_status_2_naming_it(
    tmp_path: Any, args: list[str], env: dict[str, str], named: str
) -> None:
    """A local folder that exists: the bad value is the only thing wrong."""
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", str(tmp_path), *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **env},
    )
    assert proc.returncode == 2
    assert named in proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr
    assert "serving" not in proc.stdout
