"""The example configs in config/ load, and show what a share can say: every share policy
key and every write option appears in config/shares.toml, set or as a commented example,
and the commented examples load too once uncommented (so they stay valid TOML and valid
settings as options change)."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from gateway.settings import Policy, load_settings

CONFIG = Path(__file__).resolve().parent.parent / "config"
WRITE_OPTIONS = ("sse", "sse_kms_key_id", "storage_class", "upload_checksums",
                 "expected_bucket_owner", "requester_pays", "user_project")
# A commented example line: "# key = value" or "# [[share]]" (prose lines never look so).
EXAMPLE = re.compile(r"^# (?=\[\[share\]\]$|[a-z_]+ = )", re.MULTILINE)
HOST_FILES = re.compile(r'^(tls_cert|tls_key|htpasswd) = "[^"]*"', re.MULTILINE)


def loadable(text: str, tmp_path: Path) -> Path:
    """``text`` as a config file, the files it names on its real host made here."""
    def here(match: re.Match[str]) -> str:
        made = tmp_path / match.group(1)
        made.write_text("")
        return f'{match.group(1)} = "{made}"'

    config = tmp_path / "bucketdav.toml"
    config.write_text(HOST_FILES.sub(here, text))
    return config


@pytest.mark.parametrize("name", ["shares.toml", "single.toml", "compose.toml"])
def test_each_example_loads_with_its_commented_examples(tmp_path: Path, name: str) -> None:
    text = (CONFIG / name).read_text()
    for variant in (text, EXAMPLE.sub("", text)):
        assert load_settings({}, None, str(loadable(variant, tmp_path)), env={}).shares


def test_shares_toml_shows_every_share_key(tmp_path: Path) -> None:
    text = (CONFIG / "shares.toml").read_text()
    keys = set(re.findall(r"^(?:# )?([a-z_]+) = ", text, re.MULTILINE))
    wanted = {f.name for f in fields(Policy)} | set(WRITE_OPTIONS)
    assert wanted <= keys, f"not shown in config/shares.toml: {sorted(wanted - keys)}"
    settings = load_settings({}, None, str(loadable(EXAMPLE.sub("", text), tmp_path)), env={})
    photos = next(s for s in settings.shares if s.mount == "/photos/")
    assert photos.policy.exclude == (".git", "**/*.tmp")
    assert photos.policy.quota == 500 * 1024**3
    assert any(s.policy.as_of is not None for s in settings.shares)
