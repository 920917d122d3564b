"""The WebDAV front-end's one table from domain errors to statuses."""

from __future__ import annotations

from gateway import errors as e
from gateway.responses import StatusTable

STATUS: StatusTable = {
    e.BadRequest: 400,
    e.TooLarge: 413,
    e.NotFound: 404,
    e.Exists: 412,
    e.NotPermitted: 403,
    e.Conflict: 409,
    e.PreconditionFailed: 412,
    e.Locked: 423,
    e.AccessDenied: 403,
    e.Unavailable: 503,
    e.Upstream: 502,
}
