"""Conditional requests (RFC 9110 section 13) over object metadata."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from gateway.fs.preconditions import (
    Outcome,
    etag_matches,
    evaluate,
    if_range_allows,
    parse_etags,
    parse_http_date,
)
from gateway.storage.base import ObjectInfo

MODIFIED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
ETAG = '"abc123"'
INFO = ObjectInfo("k", 10, ETAG, MODIFIED)


def http_date(when: datetime) -> str:
    return format_datetime(when, usegmt=True)


BEFORE = http_date(MODIFIED - timedelta(seconds=1))
AT = http_date(MODIFIED)
AFTER = http_date(MODIFIED + timedelta(seconds=1))


def get(headers: dict[str, str], info: ObjectInfo | None = INFO) -> Outcome:
    return evaluate(headers, info, safe_method=True)


def put(headers: dict[str, str], info: ObjectInfo | None = INFO) -> Outcome:
    return evaluate(headers, info, safe_method=False)


# ---- entity-tag lists -------------------------------------------------------------------


def test_an_etag_list_is_parsed_into_weak_flags_and_opaque_values() -> None:
    assert parse_etags('W/"a", "b" ,"c,d"') == [(True, "a"), (False, "b"), (False, "c,d")]


def test_star_means_any_current_representation() -> None:
    assert parse_etags(" * ") is None
    assert etag_matches("*", ETAG, strong=True)
    assert not etag_matches("*", None, strong=True)


def test_unquoted_tags_are_tolerated() -> None:
    assert parse_etags("abc123, W/def") == [(False, "abc123"), (True, "def")]
    assert etag_matches("abc123", ETAG, strong=True)


def test_any_tag_of_a_list_can_match() -> None:
    assert etag_matches('"x", "abc123", "y"', ETAG, strong=True)
    assert not etag_matches('"x", "y"', ETAG, strong=True)


def test_a_weak_tag_never_matches_strongly_but_does_weakly() -> None:
    assert not etag_matches('W/"abc123"', ETAG, strong=True)
    assert etag_matches('W/"abc123"', ETAG, strong=False)
    assert not etag_matches('"abc123"', 'W/"abc123"', strong=True)
    assert etag_matches('"abc123"', 'W/"abc123"', strong=False)


# ---- dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"],
)
def test_all_three_http_date_formats_are_read_as_gmt(value: str) -> None:
    assert parse_http_date(value) == datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)


@pytest.mark.parametrize(
    "value", [None, "", "yesterday", "Sun, 06 Nov 1994", "Sun, 06 Nov 1994 25:00:00 GMT", "0"]
)
def test_an_invalid_date_is_no_date(value: str | None) -> None:
    assert parse_http_date(value) is None


def test_an_invalid_date_in_a_condition_is_ignored() -> None:
    assert get({"If-Modified-Since": "not a date"}) is Outcome.PROCEED
    assert put({"If-Unmodified-Since": "not a date"}) is Outcome.PROCEED


# ---- each condition on its own ---------------------------------------------------------------


def test_if_match_proceeds_on_a_strong_match_and_fails_otherwise() -> None:
    assert put({"If-Match": ETAG}) is Outcome.PROCEED
    assert put({"If-Match": '"other"'}) is Outcome.FAILED
    assert get({"If-Match": '"other"'}) is Outcome.FAILED
    assert put({"If-Match": 'W/"abc123"'}) is Outcome.FAILED


def test_if_match_star_fails_when_nothing_exists() -> None:
    assert put({"If-Match": "*"}) is Outcome.PROCEED
    assert put({"If-Match": "*"}, None) is Outcome.FAILED


def test_if_unmodified_since_fails_only_after_a_later_change() -> None:
    assert put({"If-Unmodified-Since": AT}) is Outcome.PROCEED
    assert put({"If-Unmodified-Since": AFTER}) is Outcome.PROCEED
    assert put({"If-Unmodified-Since": BEFORE}) is Outcome.FAILED


def test_if_none_match_is_not_modified_for_reads_and_failed_for_writes() -> None:
    assert get({"If-None-Match": ETAG}) is Outcome.NOT_MODIFIED
    assert get({"If-None-Match": 'W/"abc123"'}) is Outcome.NOT_MODIFIED  # weak comparison
    assert put({"If-None-Match": ETAG}) is Outcome.FAILED
    assert get({"If-None-Match": '"other"'}) is Outcome.PROCEED


def test_if_none_match_star_refuses_to_overwrite_but_allows_creating() -> None:
    assert put({"If-None-Match": "*"}) is Outcome.FAILED
    assert put({"If-None-Match": "*"}, None) is Outcome.PROCEED


def test_if_modified_since_is_not_modified_unless_changed_later() -> None:
    assert get({"If-Modified-Since": AT}) is Outcome.NOT_MODIFIED
    assert get({"If-Modified-Since": AFTER}) is Outcome.NOT_MODIFIED
    assert get({"If-Modified-Since": BEFORE}) is Outcome.PROCEED


def test_if_modified_since_is_ignored_for_unsafe_methods() -> None:
    assert put({"If-Modified-Since": AFTER}) is Outcome.PROCEED


# ---- RFC 9110 13.2.2 evaluation order ---------------------------------------------------------


def test_if_match_is_evaluated_before_if_none_match() -> None:
    assert get({"If-Match": '"other"', "If-None-Match": ETAG}) is Outcome.FAILED


def test_a_present_if_match_makes_if_unmodified_since_ignored() -> None:
    assert put({"If-Match": ETAG, "If-Unmodified-Since": BEFORE}) is Outcome.PROCEED


def test_if_unmodified_since_is_evaluated_before_if_none_match() -> None:
    assert get({"If-Unmodified-Since": BEFORE, "If-None-Match": ETAG}) is Outcome.FAILED


def test_a_present_if_none_match_makes_if_modified_since_ignored() -> None:
    assert get({"If-None-Match": '"other"', "If-Modified-Since": AFTER}) is Outcome.PROCEED
    assert get({"If-None-Match": ETAG, "If-Modified-Since": BEFORE}) is Outcome.NOT_MODIFIED


def test_no_conditions_proceed() -> None:
    assert get({}) is Outcome.PROCEED
    assert put({}, None) is Outcome.PROCEED


# ---- If-Range ---------------------------------------------------------------------------------


def test_if_range_absent_allows_the_range() -> None:
    assert if_range_allows(None, INFO)


def test_if_range_with_the_current_etag_allows_the_range() -> None:
    assert if_range_allows(ETAG, INFO)
    assert if_range_allows(" " + ETAG + " ", INFO)


def test_if_range_with_another_etag_serves_the_whole_object() -> None:
    assert not if_range_allows('"other"', INFO)


def test_if_range_never_matches_a_weak_etag() -> None:
    assert not if_range_allows('W/"abc123"', INFO)
    assert not if_range_allows(ETAG, ObjectInfo("k", 10, 'W/"abc123"', MODIFIED))


def test_if_range_tolerates_an_unquoted_etag() -> None:
    assert if_range_allows("abc123", INFO)
    assert not if_range_allows("abc124", INFO)


def test_if_range_with_a_date_needs_the_exact_last_modified() -> None:
    assert if_range_allows(AT, INFO)
    assert not if_range_allows(AFTER, INFO)
    assert not if_range_allows(BEFORE, INFO)


def test_if_range_with_garbage_serves_the_whole_object() -> None:
    assert not if_range_allows("", INFO)
    assert not if_range_allows("Sun, 99 Foo 2024", INFO)
