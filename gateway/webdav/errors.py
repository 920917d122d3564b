"""The WebDAV front-end's one table from domain errors to statuses."""

from __future__ import annotations

from gateway.responses import COMMON_STATUS, StatusTable

# RFC 4918 answers the domain errors the way HTTP does: a refused write is 403, a failed
# precondition or an existing COPY/MOVE target with Overwrite: F is 412, a missing parent 409.
STATUS: StatusTable = {**COMMON_STATUS}
