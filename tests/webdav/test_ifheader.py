"""The If header: parsing every form clients send, and evaluating it (RFC 4918 10.4)."""

from __future__ import annotations

import pytest

from gateway.errors import BadRequest
from gateway.webdav.ifheader import (
    NO_LOCK,
    Condition,
    IfList,
    evaluate,
    parse_if,
    submitted_tokens,
    tag_parts,
)

TOKEN = "urn:uuid:6b2f2a4e-1111-4d3c-9a4b-0123456789ab"
ETAG = '"5d41402abc4b2a76b9719d911017c592"'


def test_untagged_token_as_finder_and_windows_send_it() -> None:
    assert parse_if(f"(<{TOKEN}>)") == (IfList(None, (Condition(False, token=TOKEN),)),)


def test_tagged_list_as_neon_sends_it() -> None:
    lists = parse_if(f"<http://127.0.0.1:8080/litmus/lockme> (<{TOKEN}>)")
    assert lists == (
        IfList("http://127.0.0.1:8080/litmus/lockme", (Condition(False, token=TOKEN),)),
    )


def test_token_and_etag_in_one_list_and_alternatives() -> None:
    lists = parse_if(f"(<{TOKEN}> [{ETAG}]) (Not <DAV:no-lock> [{ETAG}])")
    assert lists == (
        IfList(None, (Condition(False, token=TOKEN), Condition(False, etag=ETAG))),
        IfList(None, (Condition(True, token=NO_LOCK), Condition(False, etag=ETAG))),
    )


def test_several_resources_each_with_lists() -> None:
    lists = parse_if(f'<http://a/x> (<{TOKEN}>) (["e1"]) </y> (Not ["e2"])')
    assert [(lst.resource, len(lst.conditions)) for lst in lists] == [
        ("http://a/x", 1), ("http://a/x", 1), ("/y", 1)
    ]
    assert lists[2].conditions == (Condition(True, etag='"e2"'),)


@pytest.mark.parametrize(
    ("header", "etag"),
    [
        ('(["abc"])', '"abc"'),
        ('([W/"abc"])', 'W/"abc"'),
        ('( [ "a]b" ] )', '"a]b"'),  # a quoted etag may contain "]"
        ("([abc])", "abc"),  # unquoted: tolerated
    ],
)
def test_entity_tags(header: str, etag: str) -> None:
    assert parse_if(header)[0].conditions == (Condition(False, etag=etag),)


def test_not_is_case_insensitive_and_whitespace_is_free() -> None:
    lists = parse_if(f"\t(  nOt   <{TOKEN}>  )  ")
    assert lists[0].conditions == (Condition(True, token=TOKEN),)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "   ",
        "()",
        f"(<{TOKEN}>",
        f"(<{TOKEN})",
        "(<>)",
        "([])",
        "<http://a/x>",
        f"<http://a/x> <http://a/y> (<{TOKEN}>)",
        f"(<{TOKEN}>) <http://a/x> (<{TOKEN}>)",
        f"<http://a/x> (<{TOKEN}>) (<{TOKEN}>) junk",
        f"{TOKEN}",
        "(Not)",
        '(["abc)',
        '(["abc" x])',
    ],
)
def test_malformed_headers_are_bad_requests(header: str) -> None:
    with pytest.raises(BadRequest):
        parse_if(header)


def test_submitted_tokens_leave_out_negated_tokens_and_no_lock() -> None:
    lists = parse_if(f"(<{TOKEN}>) (Not <urn:uuid:other>) (<DAV:no-lock>)")
    assert submitted_tokens(lists) == {TOKEN}


def test_resource_tags_are_compared_by_path_only() -> None:
    assert tag_parts("http://example.com:81/a%20b/c%E2%82%AC") == ("a b", "c€")
    assert tag_parts("https://proxy.example/a%20b/c%e2%82%ac/") == ("a b", "c€")
    assert tag_parts("/a%20b/c") == ("a b", "c")
    assert tag_parts("http://host") == ()
    assert tag_parts("http://host/a/../b") is None


def _eval(header: str, *, target: tuple[str, ...] = ("litmus", "lockme"), held: set[str]
          | None = None, etag: str | None = ETAG, request_target: bool = True) -> bool:
    held = {TOKEN} if held is None else held
    return evaluate(parse_if(header), target, is_request_target=request_target,
                    holds=held.__contains__, etag=etag)


def test_untagged_token_of_a_held_lock_is_true() -> None:
    assert _eval(f"(<{TOKEN}>)")
    assert not _eval("(<urn:uuid:not-a-lock>)")


def test_no_lock_is_never_held_and_not_no_lock_always_true() -> None:
    assert not _eval("(<DAV:no-lock>)")
    assert _eval("(Not <DAV:no-lock>)")
    assert not _eval(f"(<DAV:no-lock> [{ETAG}])")  # litmus fail_cond_put


def test_etags_compare_the_opaque_part() -> None:
    assert _eval(f"([{ETAG}])")
    assert _eval(f"([W/{ETAG}])")
    assert not _eval('(["other"])')
    assert not _eval(f"([{ETAG}])", etag=None)  # the resource does not exist
    assert _eval(f"(Not [{ETAG}])", etag=None)


def test_lists_are_alternatives_and_conditions_conjunctions() -> None:
    assert _eval(f"(<{TOKEN}>) (Not <DAV:no-lock>)")
    assert _eval(f"(<{TOKEN}> [{ETAG}]) (Not <DAV:no-lock> [{ETAG}])")  # complex_cond_put
    bad = '"5d41402abc4b2a76b9719d911017c5a2"'
    # litmus fail_complex_cond_put: both lists fail on the etag
    assert not _eval(f"(<{TOKEN}> [{bad}]) (Not <DAV:no-lock> [{bad}])")


def test_tagged_lists_apply_to_the_resource_they_name_whatever_the_host() -> None:
    assert _eval(f"<http://other-host:9999/litmus/lockme> (<{TOKEN}>)")
    assert not _eval("<https://proxy/litmus/lockme> (<DAV:no-lock>)")
    # a list for another resource does not constrain this one
    assert _eval("<http://host/litmus/other> (<DAV:no-lock>)")


def test_untagged_lists_apply_only_to_the_request_target() -> None:
    assert _eval("(<DAV:no-lock>)", request_target=False)
