"""``trusted_html``: off by default, set for the single source by its flag or variable and
per share by its TOML key; it is a per-share policy like the semantics flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.cli import build_parser
from gateway.settings import OPTIONS, load_settings


def flags_of(argv: list[str]) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    return {o.name: getattr(args, o.name) for o in OPTIONS}


def test_off_by_default() -> None:
    settings = load_settings(flags_of(["serve", "s3://bucket"]), "s3://bucket", None, {})
    assert not settings.shares[0].policy.trusted_html


def test_the_flag_and_the_variable_turn_it_on_for_the_single_source() -> None:
    settings = load_settings(
        flags_of(["serve", "--trusted-html", "s3://bucket"]), "s3://bucket", None, {}
    )
    assert settings.shares[0].policy.trusted_html
    settings = load_settings({}, "s3://bucket", None, {"BUCKETDAV_TRUSTED_HTML": "true"})
    assert settings.shares[0].policy.trusted_html


def test_a_share_table_opts_in_alone(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[[share]]\npath = "/site/"\nsource = "s3://site"\ntrusted_html = true\n\n'
        '[[share]]\npath = "/uploads/"\nsource = "s3://uploads"\n'
    )
    settings = load_settings({}, None, str(config), {})
    by_mount = {s.mount: s.policy.trusted_html for s in settings.shares}
    assert by_mount == {"/site/": True, "/uploads/": False}
