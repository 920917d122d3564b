"""A real browser (headless Chromium) renders the folder listing: rows, escaping, script.

A real ``bucketdav serve`` process serves a bucket on s3rver, as tests/compat drives every
client; Chromium loads the page twice, once to dump the DOM as it stands after the page's
own script ran, once to take a screenshot, and once more over DevTools to use the filter
box and the sortable columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.compat.chromium import browser_page, png_pixels, run_chromium
from tests.gatewayproc import running_gateway
from tests.servers import S3RVER_PROFILE, client, create_bucket

pytestmark = pytest.mark.compat

# If this ran, the page title would change: it must stay text.
XSS_FILE = "<img src=x onerror=\"document.title='pwned'\">.txt"
XSS_KEY = "<script>document.title='pwned'</script>"  # a directory "<script>document.title='pwned'<"


OBJECTS = {
    "alpha.txt": (b"a" * 1234, "text/plain"),
    "Quarterly report 2024.pdf": (b"p" * 3_456_789, "application/pdf"),
    XSS_FILE: (b"x", "text/plain"),
    XSS_KEY: (b"y", "text/plain"),
    "photos/cat.jpg": (b"c" * 40_000, "image/jpeg"),
    "zeta/readme.md": (b"z", "text/markdown"),
}


@pytest.fixture(scope="module")
def base_url(s3rver: str) -> Iterator[str]:
    """``bucketdav serve`` over an s3rver bucket holding a few files; its base URL."""
    bucket = create_bucket(s3rver, profile=S3RVER_PROFILE)
    s3: Any = client(s3rver, S3RVER_PROFILE)
    for key, (body, ctype) in OBJECTS.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=ctype)
    with running_gateway(f"s3://{bucket}", "--endpoint-url", s3rver, "--force-path-style",
                         "--profile", S3RVER_PROFILE) as gateway:
        yield gateway.url


class Dom(HTMLParser):
    """Rows in document order, their visible names, and the tags that exist."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[str, str]] = []  # (class, data-name)
        self.labels: list[str] = []
        self.tags: list[str] = []
        self.title = ""
        self._label_depth = 0
        self._in_title = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        self.tags.append(tag)
        if tag == "tr" and "data-name" in attrs:
            self.rows.append((attrs.get("class", ""), attrs["data-name"]))
        if tag == "span" and attrs.get("class") == "label":
            self._label_depth = 1
            self.labels.append("")
        elif tag == "span" and self._label_depth:
            self._label_depth += 1
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._label_depth:
            self._label_depth -= 1
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._label_depth:
            self.labels[-1] += data
        if self._in_title:
            self.title += data


async def test_chromium_renders_the_listing_with_escaped_names(
    base_url: str, tmp_path: Path
) -> None:
    dom_html = (
        await run_chromium(tmp_path / "profile-dom", "--dump-dom", base_url + "/")
    ).decode("utf-8")
    dom = Dom(dom_html)
    names = [name for _, name in dom.rows]
    assert sorted(names) == sorted(
        [
            "alpha.txt",
            "Quarterly report 2024.pdf",
            XSS_FILE,
            "<script>document.title='pwned'<",
            "photos",
            "zeta",
        ]
    )
    # The page's own script ran (its nonce satisfied the CSP): folders come first,
    # although the store listed "alpha.txt" before "photos/".
    kinds = [kind for kind, _ in dom.rows]
    assert kinds == ["dir"] * 3 + ["file"] * 3
    # Hostile names are shown as text and nothing in them ran.
    assert XSS_FILE in dom.labels
    assert "<script>document.title='pwned'</" in dom.labels
    assert "img" not in dom.tags
    assert dom.tags.count("script") == 1
    assert dom.title == "Index of /"
    assert "6 entries" in dom_html


async def test_chromium_screenshot_of_the_listing(base_url: str, tmp_path: Path) -> None:
    shot = tmp_path / "listing.png"
    await run_chromium(
        tmp_path / "profile-shot",
        f"--screenshot={shot}",
        "--window-size=1000,700",
        base_url + "/",
    )
    assert shot.exists(), "chromium wrote no screenshot"
    data = shot.read_bytes()
    assert len(data) > 5_000, "a screenshot of a listing is more than a few KB"
    width, height, pixels = png_pixels(data)
    assert (width, height) == (1000, 700)
    assert len(pixels) > 16, "the screenshot shows more than a blank page"


VISIBLE_ROWS = "[...document.querySelectorAll('#rows tr')].filter(r => !r.hidden)" \
    ".map(r => r.dataset.name)"


def type_filter(text: str) -> str:
    return (
        "(() => { const f = document.getElementById('filter'); "
        f"f.value = {json.dumps(text)}; f.dispatchEvent(new Event('input')); "
        f"return {VISIBLE_ROWS}; }})()"
    )


async def test_the_filter_box_and_sortable_columns_work_in_chromium(
    base_url: str, tmp_path: Path
) -> None:
    async with browser_page(base_url + "/", tmp_path / "profile-cdp") as page:
        assert await page.evaluate(type_filter("PHO")) == ["photos"]
        assert await page.evaluate("document.getElementById('shown').textContent") == "1 shown"
        assert await page.evaluate(type_filter("no such name")) == []
        assert await page.evaluate("document.getElementById('nomatch').hidden") is False
        assert len(await page.evaluate(type_filter(""))) == 6

        click_size = "document.querySelector('button[data-key=size]').click()"
        await page.evaluate(click_size)
        assert await page.evaluate(VISIBLE_ROWS) == [
            "<script>document.title='pwned'<",
            "photos",
            "zeta",
            XSS_FILE,  # 1 byte
            "alpha.txt",  # 1234 bytes
            "Quarterly report 2024.pdf",  # 3.3 MiB
        ]
        await page.evaluate(click_size)  # again: descending, folders still first
        assert await page.evaluate(VISIBLE_ROWS) == [
            "zeta",
            "photos",
            "<script>document.title='pwned'<",
            "Quarterly report 2024.pdf",
            "alpha.txt",
            XSS_FILE,
        ]
        sort_state = "document.querySelector('th.size').getAttribute('aria-sort')"
        assert await page.evaluate(sort_state) == "descending"
        assert await page.evaluate("document.title") == "Index of /"
