"""The HTTP front-end's one table from domain errors to statuses."""

from __future__ import annotations

from gateway.responses import COMMON_STATUS, StatusTable

# GET and HEAD meet no error whose status differs from the common answer.
STATUS: StatusTable = {**COMMON_STATUS}
