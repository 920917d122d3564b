"""``Expect: 100-continue``: refuse before the client sends its body.

aiohttp answers ``100 Continue`` before any middleware runs, so a client announcing a
5 GB upload would send all of it only to learn that it is too large or that it has no
credentials. This expect handler makes the checks that need nothing but the request
head first: a missing password (401), a declared size over its limit (413), uploads
saturated (503). Otherwise it says ``100 Continue`` as aiohttp would, except for a PUT,
whose handler says it after its own checks (``responses.send_continue``): a PUT the
share's policy refuses is answered before its body is sent.
"""

from __future__ import annotations

from aiohttp import HttpVersion11, web

from gateway.auth import ACCESS
from gateway.ops.limits import LIMITS
from gateway.responses import CONTINUE_PENDING, plain, send_continue


def early_refusal(request: web.Request) -> web.Response | None:
    access = request.app.get(ACCESS)
    if (access is not None and "Authorization" not in request.headers
            and access.authenticator.anonymous is None):
        return plain(401, "authentication required", access.challenge)
    limits = request.app.get(LIMITS)
    return limits.refusal(request) if limits is not None else None


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    expect = request.headers.get("Expect", "")
    if request.version != HttpVersion11:
        return None
    if expect.lower() != "100-continue":
        raise web.HTTPExpectationFailed(text=f"unknown Expect: {expect}\n")
    refused = early_refusal(request)
    if refused is not None:
        refused.force_close()  # the body will not be read
        return refused
    request[CONTINUE_PENDING] = True
    if request.method != "PUT":
        await send_continue(request)
    # A PUT says 100 itself once it has checked the parent, preconditions, locks and policy.
    return None
