"""Logs: one structured line per request, in logfmt text or JSON, and the log setup.

The access line is written when aiohttp has sent the last byte of the response (so bytes
and duration are the real ones), through aiohttp's access-logger hook; the same hook
records the request metrics. It holds method, path (percent-encoded, without the query),
status, bytes in and out, duration, user, client address (the one ``--trusted-proxy``
allows) and user agent, and for a response cut mid-body (client gone, object replaced) why,
with the bytes that were sent. Never a header value other than the user agent, never the
query string, never the authority of an absolute-form target (``http://user:pw@host/``),
never credentials: a password cannot reach the log because nothing that could carry one is
written. The same goes for aiohttp's own lines about request heads its parser refuses:
``parser_refusal`` describes the fault without quoting the client's bytes.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    PayloadEncodingError,
)

from gateway.auth import USER
from gateway.auth.proxies import TrustedProxies, client_address
from gateway.fs.paths import split_target
from gateway.ops.metrics import Metrics
from gateway.responses import CUT

ACCESS_LOGGER = "bucketdav.access"
NO_PROXIES = TrustedProxies()


def bytes_out(request: web.BaseRequest, response: web.StreamResponse) -> int:
    """What was sent: the whole response, or as far as a cut one got."""
    cut = request.get(CUT)
    return cut.sent if cut is not None else response.body_length


def access_fields(request: web.BaseRequest, response: web.StreamResponse, seconds: float,
                  proxies: TrustedProxies | None = None) -> dict[str, Any]:
    user = request.get(USER)
    cut = request.get(CUT)
    fields = {
        "method": request.method,
        "path": split_target(request.raw_path)[0],  # absolute form: its path only
        "status": response.status,
        "bytes_in": request.content.total_bytes,
        "bytes_out": bytes_out(request, response),
        "duration": round(seconds, 6),
        "user": user.label if user is not None else "-",
        "client": client_address(request, proxies or NO_PROXIES),
        "agent": request.headers.get("User-Agent", "-"),
    }
    if cut is not None:
        fields["cut"] = cut.reason
    return fields


# What a log line says about a request head aiohttp's parser refused. Their messages
# quote the offending line (a request line with userinfo, an Authorization header too
# long to read): never logged, only what kind of fault it was.
_REFUSALS: tuple[tuple[type[HttpProcessingError], str], ...] = (
    (BadHttpMethod, "not an HTTP method (or TLS sent to a plain http port)"),
    (BadStatusLine, "a malformed request line"),
    (InvalidURLError, "a malformed request target"),
    (InvalidHeader, "a malformed header"),
    (PayloadEncodingError, "a malformed request body"),
    (BadHttpMessage, "a malformed request head"),
)


def parser_refusal(exc: HttpProcessingError) -> str:
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else "?"
        return (f"a request line or header line longer than {limit} bytes "
                "(--max-url-bytes, --max-header-bytes)")
    for kind, description in _REFUSALS:
        if isinstance(exc, kind):
            return description
    return f"a malformed request ({type(exc).__name__})"


def logfmt(fields: dict[str, Any]) -> str:
    """``key=value`` pairs; values with spaces, quotes, ``=`` or control characters are
    JSON-quoted, so a crafted path or user agent cannot forge a log line."""
    parts = []
    for key, value in fields.items():
        text = str(value)
        if not text or any(c in text for c in ' "=\\') or not text.isprintable():
            text = json.dumps(text)
        parts.append(f"{key}={text}")
    return " ".join(parts)


def observer_class(metrics: Metrics | None, log_requests: bool,
                   proxies: TrustedProxies | None = None) -> type[AbstractAccessLogger]:
    """An aiohttp access logger class that records metrics and (optionally) logs."""

    class RequestObserver(AbstractAccessLogger):
        @property
        def enabled(self) -> bool:
            return True  # metrics are wanted even when the log line is not

        def log(self, request: web.BaseRequest, response: web.StreamResponse,
                time: float) -> None:
            # The line's fields are gathered and formatted only for a logger that writes
            # it (--log-level warning drops it): metrics alone need four numbers.
            if metrics is not None:
                metrics.observe(request.method, response.status, time,
                                request.content.total_bytes, bytes_out(request, response))
            if log_requests and self.logger.isEnabledFor(logging.INFO):
                fields = access_fields(request, response, time, proxies)
                self.logger.info(logfmt(fields), extra={"access": fields})

    return RequestObserver


class JsonFormatter(logging.Formatter):
    """One JSON object per line; access lines carry their fields as top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            entry.update(access)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str, stream: Any = None) -> None:
    """Route every log record to stderr in the chosen format (replacing earlier setup)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's own access logger is off (ours replaces it); its errors still show
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # botocore narrates credential lookups at INFO; keep startup output to our own lines
    for chatty in ("botocore", "aiobotocore"):
        logging.getLogger(chatty).setLevel(max(root.level, logging.WARNING))
