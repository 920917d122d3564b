"""URL paths <-> names: decoded once from the raw target, never normalised, never escaping."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import InvalidPath
from gateway.fs.paths import DavPath, decode_path, is_valid_name, key_to_parts, split_target


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("/a%20b", "a b"),
        ("/a b", "a b"),
        ("/frag#ment", "frag#ment"),
        ("/frag%23ment", "frag#ment"),
        ("/what%3F", "what?"),
        ("/100%25", "100%"),
        ("/a+b", "a+b"),
        ("/a%2Bb", "a+b"),
        ("/a&b=c", "a&b=c"),
        ("/%22quoted%22%20%27single%27", "\"quoted\" 'single'"),
        ("/res-%e2%82%ac", "res-€"),
        ("/%F0%9F%98%80.txt", "😀.txt"),
        ("/...", "..."),
        ("/.hidden", ".hidden"),
        ("/a.", "a."),
    ],
)
def test_a_name_is_decoded_exactly_once(raw: str, name: str) -> None:
    path = decode_path(raw)
    assert path.parts == (name,)
    assert decode_path(path.href()) == path


def test_nfc_and_nfd_spellings_stay_distinct() -> None:
    nfc = unicodedata.normalize("NFC", "ü")
    nfd = unicodedata.normalize("NFD", "ü")
    assert decode_path("/%C3%BC").parts == (nfc,)
    assert decode_path("/u%CC%88").parts == (nfd,)
    assert decode_path("/%C3%BC") != decode_path("/u%CC%88")
    assert DavPath((nfd,)).href() == "/u%CC%88"


def test_a_literal_question_mark_starts_the_query_and_a_hash_is_data() -> None:
    assert split_target("/a%3Fb?x=1#y") == ("/a%3Fb", "x=1#y")
    assert split_target("/frag#ment") == ("/frag#ment", "")


def test_an_absolute_form_target_is_reduced_to_its_path() -> None:
    assert split_target("http://host:8080/a%20b?x=1") == ("/a%20b", "x=1")
    assert split_target("https://host") == ("/", "")
    assert split_target("/not://absolute") == ("/not://absolute", "")


def test_the_trailing_slash_is_remembered() -> None:
    assert decode_path("/a/b/") == DavPath(("a", "b"), True)
    assert decode_path("/a/b") == DavPath(("a", "b"), False)
    assert decode_path("/") == DavPath((), True)


@pytest.mark.parametrize(
    "raw",
    [
        "/..",
        "/a/../b",
        "/../etc/passwd",
        "/%2e%2e/x",
        "/%2E%2e/x",
        "/a/%2E%2E",
        "/.",
        "/a/./b",
        "/%2e",
        "/a//b",
        "//a",
        "/a//",
        "//",
        "/a%00b",
        "/a\x00b",
        "/a\\b",
        "/a%5Cb",
        "/a%5cb",
        "/a%2Fb",
        "/a%2fb",
        "/bad%01name.txt",
        "/line%0D%0Abreak",
        "/tab%09name",
        "/del%7Fname",
        "/a\x1fb",
        "/%FF",
        "/%C3",
        "/%ED%A0%80",  # an encoded UTF-16 surrogate is not UTF-8
        "relative",
        "",
    ],
)
def test_paths_that_cannot_be_keys_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidPath):
        decode_path(raw)


def test_a_rejection_names_the_problem() -> None:
    with pytest.raises(InvalidPath, match="NUL"):
        decode_path("/a%00")
    with pytest.raises(InvalidPath, match="%2F"):
        decode_path("/a%2Fb")
    with pytest.raises(InvalidPath, match="UTF-8"):
        decode_path("/%FF")
    with pytest.raises(InvalidPath, match="'\\.\\.'"):
        decode_path("/%2e%2e")
    with pytest.raises(InvalidPath, match="control characters"):
        decode_path("/bad%01name.txt")


@pytest.mark.parametrize("name", ["bad\x01name", "cr\rlf\n", "del\x7f", "\x1f"])
def test_a_key_with_a_control_character_is_not_a_path(name: str) -> None:
    # Keys already in a bucket with such names are hidden from listings, never served.
    assert key_to_parts("", f"dir/{name}") is None
    assert not is_valid_name(name)


def test_an_href_is_percent_encoded_with_uppercase_hex() -> None:
    path = DavPath(("a b", "c#d?e", "ü%", "x"), True)
    assert path.href() == "/a%20b/c%23d%3Fe/%C3%BC%25/x/"
    assert DavPath(("a&b+c", "it's")).href() == "/a%26b%2Bc/it%27s"


def test_an_href_under_a_mount_point() -> None:
    assert DavPath(("f",)).href("/share") == "/share/f"
    assert DavPath(("d",), True).href("/share/") == "/share/d/"
    assert DavPath((), True).href("/share/") == "/share/"


_names = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="/"), min_size=1, max_size=20
).filter(is_valid_name)


@given(parts=st.lists(_names, min_size=0, max_size=6), is_dir=st.booleans())
def test_any_valid_name_list_survives_an_href_round_trip(parts: list[str], is_dir: bool) -> None:
    path = DavPath(tuple(parts), is_dir or not parts)
    href = path.href()
    assert href.isascii()
    assert decode_path(href).parts == tuple(parts)
    assert decode_path(href) == path
