"""The filter and quota options: TOML arrays in [[share]] tables, comma lists in flags and
environment variables, and a clear refusal of what cannot compile."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import build_parser
from gateway.settings import SettingsError, load_settings


def test_flags_take_comma_lists(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["serve", str(tmp_path), "--include", "photos/**, *.md", "--exclude", "**/*.tmp",
         "--filter", r"\.jpg$", "--quota", "500G"]
    )
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "source", "config")}
    policy = load_settings(flags, str(tmp_path), env={}).shares[0].policy
    assert policy.include == ("photos/**", "*.md")
    assert policy.exclude == ("**/*.tmp",)
    assert policy.filter == r"\.jpg$"
    assert policy.quota == 500 * 1024**3


def test_environment_variables(tmp_path: Path) -> None:
    env = {"BUCKETDAV_EXCLUDE": ".git,**/*.tmp", "BUCKETDAV_QUOTA": "1M"}
    policy = load_settings({}, str(tmp_path), env=env).shares[0].policy
    assert policy.exclude == (".git", "**/*.tmp") and policy.quota == 1024 * 1024


def test_share_tables_take_toml_arrays(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[[share]]\npath = "/a/"\nsource = "s3://b/a"\ninclude = ["x/**", "*.md"]\n'
        'quota = "2G"\n\n[[share]]\npath = "/b/"\nsource = "s3://b/b"\n'
        'filter = "^(?!tmp/)"\n'
    )
    a, b = load_settings({}, None, str(config), env={}).shares
    assert a.policy.include == ("x/**", "*.md") and a.policy.quota == 2 * 1024**3
    assert b.policy.include is None and b.policy.quota is None
    assert b.policy.filter == "^(?!tmp/)"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"filter": "(unclosed"}, "filter '(unclosed' is not a regular expression"),
        ({"exclude": "a,/"}, "exclude has an empty glob"),
        ({"quota": "0"}, "quota must be at least 1 byte"),
    ],
)
def test_what_cannot_compile_stops_startup(tmp_path: Path, flags: dict[str, str],
                                           message: str) -> None:
    with pytest.raises(SettingsError, match="share /: " + message.replace("(", r"\(")):
        load_settings(flags, str(tmp_path), env={})


def test_a_toml_value_of_the_wrong_kind_is_named(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[[share]]\npath = "/"\nsource = "s3://b"\ninclude = [1, 2]\n')
    with pytest.raises(SettingsError, match="include must be a list of strings"):
        load_settings({}, None, str(config), env={})
