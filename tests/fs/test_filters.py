"""Key filters as pure functions: globs (``**``, ``*``, ``?``, anchors), the visibility
rule of files and markers, and what a directory's name alone tells."""

from __future__ import annotations

import pytest

from gateway.fs.filters import DirVerdict, KeyFilter, compile_glob


def names(path: str) -> list[str]:
    return [n for n in path.split("/") if n]


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("*.txt", "a.txt", True),
        ("*.txt", "d/a.txt", False),  # anchored: one component only
        ("*.txt", "a.txt.bak", False),  # anchored at the end too
        ("**/*.txt", "a.txt", True),  # ** may match no component
        ("**/*.txt", "d/e/a.txt", True),
        ("a/**", "a/b/c", True),
        ("a/**/z", "a/z", True),
        ("a/**/z", "a/b/c/z", True),
        ("a/**/z", "a/b/c/y", False),
        ("?.log", "x.log", True),
        ("?.log", "xy.log", False),
        ("?", "/", False),
        ("a*b", "a/b", False),  # * never crosses "/"
        ("a**b", "axxb", True),  # ** inside a name is a plain *
        ("a**b", "ax/xb", False),
        ("[x].txt", "[x].txt", True),  # no character classes: literal
        ("a.b", "aXb", False),  # regex metacharacters are literal
    ],
)
def test_glob_matches(glob: str, path: str, matches: bool) -> None:
    assert compile_glob(glob).matches(names(path)) is matches


def test_a_glob_naming_a_directory_covers_what_is_below() -> None:
    g = compile_glob(".git")
    assert g.covers(names(".git/objects/ab"))
    assert not g.covers(names("src/.git"))
    assert compile_glob("**/node_modules").covers(names("web/node_modules/x/y.js"))


def test_may_match_below() -> None:
    g = compile_glob("photos/**/*.jpg")
    assert g.may_match_below(names("photos"))
    assert g.may_match_below(names("photos/2024"))
    assert not g.may_match_below(names("docs"))
    assert not compile_glob("*.txt").may_match_below(names("d"))


def test_an_empty_glob_is_refused() -> None:
    with pytest.raises(ValueError):
        compile_glob("/")


def test_visible_needs_an_include_no_exclude_and_the_filter() -> None:
    f = KeyFilter.build(["photos", "**/*.md"], ["**/*.tmp"], r"^(?!draft)")
    assert f.visible("photos/a.jpg")
    assert f.visible("notes/readme.md")
    assert not f.visible("notes/readme.txt")  # no include
    assert not f.visible("photos/a.tmp")  # an exclude
    assert not f.visible("draft.md")  # the filter
    assert f.why_hidden("photos/a.tmp") == "exclude '**/*.tmp'"
    assert f.why_hidden("x.txt") == "include 'photos', '**/*.md'"
    assert f.why_hidden("draft.md") == "filter '^(?!draft)'"


def test_markers_need_an_include_that_could_match_below_them() -> None:
    f = KeyFilter.build(["photos/**/*.jpg"], [], None)
    assert f.visible("photos/")
    assert f.visible("photos/2024/")
    assert not f.visible("docs/")
    assert not f.visible("photos/a.png")


def test_the_filter_is_searched_in_the_key_after_the_prefix_markers_too() -> None:
    f = KeyFilter.build([], [], r"\.csv$")
    assert f.visible("d/x.csv")
    assert not f.visible("d/x.txt")
    assert not f.visible("d/")  # a marker is a key like any other
    g = KeyFilter.build([], [], "csv")
    assert g.visible("csv/data") and g.visible("a.csv.gz")  # search, not fullmatch


@pytest.mark.parametrize(
    ("include", "exclude", "regex", "directory", "verdict"),
    [
        ([], [], None, "a/", DirVerdict.VISIBLE),
        ([], ["secret"], None, "secret/", DirVerdict.HIDDEN),
        ([], ["secret"], None, "public/", DirVerdict.VISIBLE),
        ([], ["**/*.tmp"], None, "a/", DirVerdict.UNKNOWN),  # a name pattern: look
        (["photos"], [], None, "photos/2024/", DirVerdict.VISIBLE),
        (["photos"], [], None, "docs/", DirVerdict.HIDDEN),
        (["**/*.jpg"], [], None, "docs/", DirVerdict.UNKNOWN),
        ([], [], "x", "a/", DirVerdict.UNKNOWN),
    ],
)
def test_what_a_directory_name_tells(include: list[str], exclude: list[str],
                                     regex: str | None, directory: str,
                                     verdict: DirVerdict) -> None:
    assert KeyFilter.build(include, exclude, regex).directory(directory) is verdict


def test_no_filters_show_everything() -> None:
    f = KeyFilter.none()
    assert not f.active and f.visible("anything/at/all") and f.why_hidden("x") is None
