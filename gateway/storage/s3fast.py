"""The hot requests of an S3 store (GetObject, HeadObject, ListObjectsV2) without botocore's
generic pipeline.

Profiles of 4 KiB GETs put about 70% of the gateway's CPU in botocore's per-request work:
endpoint rules, user-agent, event hooks, signing through the request signer, response
parsing; of what was left, half was botocore's SigV4 signer (an AWSRequest per request,
the signing key derived again each time). ``HotPath`` sends those three requests on
botocore's own aiohttp session (one pool for both paths, so ``--max-connections`` bounds
them together, with its TLS, proxy and timeout settings), written and, when small, read
without aiohttp's client pipeline (``s3lean.py``), signed here as botocore signs them
(``sign``, checked against botocore in the tests) with the client's credentials (frozen
per request, so refreshable ones are refreshed). The base URL is botocore's: asked once
from the client for a sample key, so path-style,
virtual-host, region and custom endpoints come out as the client would send them. Each
method takes botocore's parameters and answers botocore's shape, so ``S3Store`` uses either
the same way and errors go through the one table (``s3errors.py``) as ``ClientError``.

Retries: none for GetObject (the engine's fetch retries a range with backoff and jitter:
one layer); HeadObject and ListObjectsV2 are tried up to botocore's standard attempts on a
lost connection or a 5xx/throttle, with its capped exponential backoff and full jitter.
A store that redirects to another region (AWS's 301 with ``x-amz-bucket-region``) turns the
hot path off: botocore, which follows such redirects, takes every request from then on.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit

import aiohttp
from botocore import UNSIGNED
from botocore import exceptions as boto
from yarl import URL

from gateway.storage.presets import MAX_ATTEMPTS, Preset
from gateway.storage.s3lean import LeanSender, Response, Small
from gateway.storage.s3stream import Body

PROBE_KEY = "bucketdav-probe"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
_RETRIED_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestThrottled", "TooManyRequests",
    "RequestTimeout", "InternalError", "ServiceUnavailable",
})
_DATES: dict[str, datetime] = {}  # HTTP dates seen: an object's is parsed once


def http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    found = _DATES.get(value)
    if found is None:
        try:
            found = parsedate_to_datetime(value).astimezone(UTC)
        except (TypeError, ValueError):
            return None
        if len(_DATES) > 4096:
            _DATES.clear()
        _DATES[value] = found
    return found


def iso_date(value: str | None) -> datetime | None:
    """A listing's LastModified (``2026-11-30T08:00:00.000Z``)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        return None


def _checksum_member(header: str) -> str:
    """``x-amz-checksum-crc32c`` -> botocore's ``ChecksumCRC32C``."""
    return "Checksum" + header[len("x-amz-checksum-"):].upper()


def head_response(status: int, headers: Any) -> dict[str, Any]:
    """A HEAD or GET answer's headers as botocore's response members."""
    response: dict[str, Any] = {
        "ResponseMetadata": {"HTTPStatusCode": status},
        "ETag": headers.get("ETag", ""),
        "LastModified": http_date(headers.get("Last-Modified")),
        "ContentLength": int(headers.get("Content-Length") or 0),
    }
    metadata = {}
    for name, value in headers.items():
        low = name.lower()
        if not low.startswith("x-amz-") and low not in ("content-type", "content-range"):
            continue
        if low == "content-type":
            response["ContentType"] = value
        elif low == "content-range":
            response["ContentRange"] = value
        elif low.startswith("x-amz-meta-"):
            metadata[low[len("x-amz-meta-"):]] = value
        elif low == "x-amz-checksum-type":
            response["ChecksumType"] = value
        elif low.startswith("x-amz-checksum-"):
            response[_checksum_member(low)] = value
        elif low == "x-amz-version-id":
            response["VersionId"] = value
    response["Metadata"] = metadata
    return response


def _text(element: ET.Element, tag: str) -> str | None:
    found = element.find(tag)
    return None if found is None else (found.text or "")


def list_response(body: bytes) -> dict[str, Any]:
    """A ListObjectsV2 answer (``encoding-type=url``) as botocore's members, decoded."""
    root = ET.fromstring(body)
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    encoded = (_text(root, ns + "EncodingType") or "") == "url"
    decode = unquote_plus if encoded else str
    key_tag, size_tag, etag_tag, date_tag = (ns + "Key", ns + "Size", ns + "ETag",
                                             ns + "LastModified")
    contents = []
    for item in root.iterfind(ns + "Contents"):
        contents.append({
            "Key": decode(_text(item, key_tag) or ""),
            "Size": int(_text(item, size_tag) or 0),
            "ETag": _text(item, etag_tag) or "",
            "LastModified": iso_date(_text(item, date_tag)),
        })
    prefixes = [{"Prefix": decode(_text(p, ns + "Prefix") or "")}
                for p in root.iterfind(ns + "CommonPrefixes")]
    return {
        "Contents": contents,
        "CommonPrefixes": prefixes,
        "IsTruncated": (_text(root, ns + "IsTruncated") or "").lower() == "true",
        "NextContinuationToken": _text(root, ns + "NextContinuationToken"),
    }


def error_from(status: int, body: bytes, headers: Any, operation: str) -> boto.ClientError:
    """The ClientError botocore would raise for an error answer (code from the XML body,
    else the status, as botocore does for a HEAD)."""
    code, message = str(status), ""
    if body:
        try:
            root = ET.fromstring(body)
            code = (root.findtext("Code") or code).strip()
            message = (root.findtext("Message") or "").strip()
        except ET.ParseError:
            pass
    return boto.ClientError({
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": dict(headers)},
    }, operation)


class SigningKeys:
    """SigV4 signing keys by (secret, day, region): four HMACs once a day, not per request."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str, str], bytes] = {}

    def get(self, secret: str, day: str, region: str) -> bytes:
        key = self._keys.get((secret, day, region))
        if key is None:
            key = ("AWS4" + secret).encode()
            for part in (day, region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            if len(self._keys) > 8:
                self._keys.clear()
            self._keys[(secret, day, region)] = key
        return key


_STAMP = (0, "")  # (second, its X-Amz-Date): formatted once a second, not per request


def amz_date() -> str:
    """Now as X-Amz-Date (``20261130T080000Z``)."""
    global _STAMP
    second = int(time.time())
    if _STAMP[0] != second:
        _STAMP = (second, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second)))
    return _STAMP[1]


def sign(keys: SigningKeys, method: str, path: str, query: str, headers: dict[str, str],
         credentials: Any, region: str, now: str | None = None) -> None:
    """Add SigV4 headers for a bodiless S3 request, as botocore's S3SigV4Auth signs it
    (every header but the hop-by-hop ones; ``path`` and ``query`` as sent, already
    encoded and the query sorted): X-Amz-Date, X-Amz-Content-SHA256, the session token
    and Authorization. ``now`` (``20261130T080000Z``) for tests."""
    stamp = now or amz_date()
    headers["X-Amz-Date"] = stamp
    headers["X-Amz-Content-SHA256"] = EMPTY_SHA256
    if credentials.token:
        headers["X-Amz-Security-Token"] = credentials.token
    signed = sorted((name.lower(), " ".join(value.split())) for name, value in headers.items())
    names = ";".join([name for name, _ in signed])
    canonical = "\n".join((method, path, query,
                           "".join([f"{name}:{value}\n" for name, value in signed]),
                           names, EMPTY_SHA256))
    scope = f"{stamp[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(("AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()))
    # hmac.digest: one call into OpenSSL, no HMAC object per request
    signature = hmac.digest(keys.get(credentials.secret_key, stamp[:8], region),
                            to_sign.encode(), "sha256").hex()
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                                f"SignedHeaders={names}, Signature={signature}")


def list_query(prefix: str, delimiter: str | None, token: str | None, max_keys: int) -> str:
    """The ListObjectsV2 query, sorted and quoted as SigV4's canonical query string, so
    the wire form is the signed one."""
    pairs = [("list-type", "2"), ("encoding-type", "url"), ("max-keys", str(max_keys)),
             ("prefix", prefix)]
    if delimiter:
        pairs.append(("delimiter", delimiter))
    if token:
        pairs.append(("continuation-token", token))
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                    for k, v in sorted(pairs))


class Redirected(Exception):
    """The store sent the request elsewhere: botocore takes over."""


class HotPath:
    """GetObject, HeadObject and ListObjectsV2 of one bucket; the rest stays on ``client``."""

    def __init__(self, client: Any, preset: Preset, bucket: str) -> None:
        self.client = client
        self.preset = preset
        self.bucket = bucket
        self.base = ""  # the URL of the sample key, less the key
        self.host = ""
        self.base_path = ""  # the path part of ``base``: what is signed before the key
        self.region = client.meta.region_name or "us-east-1"
        self.unsigned = preset.config.get("signature_version") is UNSIGNED
        self.credentials: Any = getattr(getattr(client, "_request_signer", None),
                                        "_credentials", None)
        self.session: aiohttp.ClientSession | None = None
        self.proxy: str | None = None
        self.proxy_headers: dict[str, str] | None = None
        self.lean: LeanSender | None = None  # the session's requests without its pipeline
        self.enabled = True
        self._keys = SigningKeys()

    async def _ready(self) -> bool:
        """Whether this takes the request. The base URL is botocore's, asked once; the
        presigned URL that tells it needs credentials: without any yet, botocore takes the
        request (and answers its own error)."""
        if self.base or not self.enabled:
            return self.enabled
        try:
            url = await self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": PROBE_KEY}, ExpiresIn=60)
        except boto.NoCredentialsError:
            return False
        parts = urlsplit(url)
        path = parts.path
        if not path.endswith("/" + PROBE_KEY):
            self.enabled = False  # an address form this does not know: botocore's way
            return False
        # botocore's own aiohttp session for this address (its pool, TLS settings, proxy
        # and timeouts): both paths share one pool, so --max-connections bounds them both.
        http = getattr(getattr(self.client, "_endpoint", None), "http_session", None)
        proxies = getattr(http, "_proxy_config", None)
        if http is None or proxies is None or not hasattr(http, "_get_session"):
            self.enabled = False  # an aiobotocore this does not know: botocore's way
            return False
        proxy = proxies.proxy_url_for(url)
        session = await http._get_session(proxy)
        # Set only now, together: a request arriving during the awaits above finds the
        # hot path not ready yet and asks for it too, never half of it.
        self.proxy = proxy
        self.proxy_headers = proxies.proxy_headers_for(url) or None
        self.session = session
        self.host = parts.netloc
        self.base_path = path[: -len(PROBE_KEY)]
        base = f"{parts.scheme}://{parts.netloc}{self.base_path}"
        self.lean = LeanSender.create(session, base, proxy)
        self.base = base
        return True


    # ---- requests ----------------------------------------------------------------------
    async def _signed(self, method: str, path: str, query: str,
                      headers: dict[str, str]) -> tuple[URL, dict[str, str]]:
        # The bucket itself (a listing) is named without the slash, as botocore does.
        if path:
            url, signed_path = self.base + path, self.base_path + path
        else:
            url, signed_path = self.base.rstrip("/"), self.base_path.rstrip("/") or "/"
        if query:
            url += "?" + query
        headers["Host"] = self.host
        headers.update(self.preset.headers)
        if self.unsigned:
            return URL(url, encoded=True), headers
        credentials = self.credentials
        if credentials is None:
            raise boto.NoCredentialsError()
        frozen = await credentials.get_frozen_credentials()
        sign(self._keys, method, signed_path, query, headers, frozen, self.region)
        headers["Accept-Encoding"] = "identity"  # bytes as stored, as botocore asks
        return URL(url, encoded=True), headers

    async def _send(self, method: str, path: str, query: str, headers: dict[str, str],
                    operation: str) -> Response:
        if self.session is None:
            raise RuntimeError("the hot path is not ready")
        url, signed = await self._signed(method, path, query, headers)
        if self.lean is not None:
            response = await self.lean.send(method, url, signed)
        else:
            response = await self.session.request(method, url, headers=signed,
                                                  allow_redirects=False, proxy=self.proxy,
                                                  proxy_headers=self.proxy_headers)
        if response.status < 300:
            return response
        body = b"" if method == "HEAD" else await response.read()
        response.release()
        if response.status in (301, 307, 400) and "x-amz-bucket-region" in response.headers:
            self.enabled = False
            raise Redirected(response.headers["x-amz-bucket-region"])
        raise error_from(response.status, body, response.headers, operation)

    async def _retried(self, method: str, path: str, query: str, headers: dict[str, str],
                       operation: str) -> Response:
        """``_send`` with botocore's standard retries (HEAD and LIST: idempotent, small)."""
        for attempt in range(MAX_ATTEMPTS):
            last = attempt == MAX_ATTEMPTS - 1
            try:
                return await self._send(method, path, query, dict(headers), operation)
            except boto.ClientError as e:
                status = e.response["ResponseMetadata"]["HTTPStatusCode"]
                if last or not (status >= 500 or e.response["Error"]["Code"] in _RETRIED_CODES):
                    raise
            except (aiohttp.ClientError, TimeoutError):
                if last:
                    raise
            await asyncio.sleep(random.uniform(0, min(20.0, 2.0 ** attempt)))
        raise AssertionError("unreachable")

    def _object(self, params: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
        path = quote(params["Key"], safe="/~")
        query = ""
        if "VersionId" in params:
            query = "versionId=" + quote(params["VersionId"], safe="-_.~")
        headers: dict[str, str] = {}
        if "Range" in params:
            headers["Range"] = params["Range"]
        if "IfMatch" in params:
            headers["If-Match"] = params["IfMatch"]
        if params.get("ChecksumMode") == "ENABLED":
            headers["x-amz-checksum-mode"] = "ENABLED"
        return path, query, headers

    async def get_object(self, **params: Any) -> dict[str, Any]:
        if not (self.base and self.enabled) and not await self._ready():
            return dict(await self.client.get_object(**params))
        path, query, headers = self._object(params)
        try:
            response = await self._send("GET", path, query, headers, "GetObject")
        except Redirected:
            return dict(await self.client.get_object(**params))
        answer = head_response(response.status, response.headers)
        if isinstance(response, Small):
            answer["Body"] = response.stream()
        else:
            assert isinstance(response, aiohttp.ClientResponse)
            answer["Body"] = Body(response)
        return answer

    async def head_object(self, **params: Any) -> dict[str, Any]:
        if not (self.base and self.enabled) and not await self._ready():
            return dict(await self.client.head_object(**params))
        path, query, headers = self._object(params)
        try:
            response = await self._retried("HEAD", path, query, headers, "HeadObject")
        except Redirected:
            return dict(await self.client.head_object(**params))
        response.release()
        return head_response(response.status, response.headers)

    async def list_body(self, query: str) -> bytes | None:
        """The bytes of the ListObjectsV2 page ``query`` asks for (``list_query``); None
        when botocore must take the request (the hot path is off, or the store redirected)."""
        if not (self.base and self.enabled) and not await self._ready():
            return None
        try:
            response = await self._retried("GET", "", query, {}, "ListObjectsV2")
        except Redirected:
            return None
        try:
            return await response.read()
        finally:
            response.release()
