"""The one table from domain errors to statuses: every error a request can end with has
a status there (never the 500 of an unexpected failure), the most specific class winning."""

from __future__ import annotations

import inspect

import pytest

from gateway import errors
from gateway.errors import STATUS, GatewayError, status_for

DOMAIN_ERRORS = [
    cls for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, GatewayError) and cls is not GatewayError
]


@pytest.mark.parametrize("cls", DOMAIN_ERRORS, ids=lambda c: c.__name__)
def test_every_domain_error_has_a_status(cls: type[GatewayError]) -> None:
    status = status_for(cls())
    assert 400 <= status < 600 and status != 500


@pytest.mark.parametrize(("error", "status"), [
    (errors.InvalidPath(), 400),  # a BadRequest
    (errors.ObjectChanged(), 412),  # a PreconditionFailed
    (errors.Unavailable(), 503),  # more specific than Upstream's 502
    (errors.MethodNotAllowed(collection=True), 405),
    (GatewayError(), 500),
])
def test_the_most_specific_class_decides(error: GatewayError, status: int) -> None:
    assert status_for(error) == status


def test_the_table_names_only_domain_errors() -> None:
    assert all(issubclass(cls, GatewayError) for cls in STATUS)
