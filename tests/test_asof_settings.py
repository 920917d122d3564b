"""The as_of option: an RFC 3339 time with its offset from a flag, an environment variable
or a [[share]] table (TOML date-time or string), normalised to UTC; pickled plainly for
worker processes."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.cli import build_parser
from gateway.settings import SettingsError, load_settings

WHEN = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def test_the_flag_takes_an_offset_and_keeps_utc(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["serve", str(tmp_path), "--as-of", "2026-11-30T08:00:00+02:00"])
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "source", "config")}
    as_of = load_settings(flags, str(tmp_path), env={}).shares[0].policy.as_of
    assert as_of == WHEN and as_of is not None and as_of.tzinfo == UTC
    assert pickle.loads(pickle.dumps(as_of)) == WHEN


def test_environment_and_share_tables(tmp_path: Path) -> None:
    env = {"BUCKETDAV_AS_OF": "2026-11-30T06:00:00Z"}
    assert load_settings({}, str(tmp_path), env=env).shares[0].policy.as_of == WHEN
    config = tmp_path / "c.toml"
    config.write_text(
        '[[share]]\npath = "/a/"\nsource = "s3://b/a"\nas_of = 2026-11-30T06:00:00Z\n\n'
        '[[share]]\npath = "/b/"\nsource = "s3://b/b"\nas_of = "2026-11-30T06:00:00Z"\n\n'
        '[[share]]\npath = "/c/"\nsource = "s3://b/c"\n'
    )
    a, b, c = load_settings({}, None, str(config), env={}).shares
    assert a.policy.as_of == WHEN and b.policy.as_of == WHEN and c.policy.as_of is None


@pytest.mark.parametrize("value", ["yesterday", "2026-11-30T06:00:00", "2026-11-30"])
def test_a_time_without_offset_is_refused_naming_the_option(value: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="as_of must be an RFC 3339 time"):
        load_settings({}, str(tmp_path), env={"BUCKETDAV_AS_OF": value})
