"""The README stays true to the code: every option the command takes is documented, by its
whole name and with its default, and the README documents no option that does not exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import build_parser
from gateway.settings import OPTIONS, Option

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text("utf-8")

# A row of the README's option tables: | `--flag METAVAR` | default | help |
ROW = re.compile(r"^\| `(--[a-z0-9-]+)(?: [^`]*)?` \| ([^|]*?) \|", re.MULTILINE)


def documented(readme: str) -> dict[str, str]:
    """Flag -> the default its README row shows."""
    return {flag: default for flag, default in ROW.findall(readme)}


def shown(option: Option, cell: str) -> Any:
    """What a README default cell says, as the option's own value."""
    if cell == "—":
        return None
    if option.kind is bool:
        return {"on": True, "off": False}[cell]
    return option.kind(cell)


TABLE = documented(README)


@pytest.mark.parametrize("option", OPTIONS, ids=[o.flag for o in OPTIONS])
def test_every_option_is_in_the_readme_with_its_default(option: Option) -> None:
    assert option.flag in TABLE, f"{option.flag} has no row in the README's option tables"
    assert shown(option, TABLE[option.flag]) == option.default


def test_the_readme_documents_only_options_that_exist() -> None:
    assert set(TABLE) - {o.flag for o in OPTIONS} == set()


@pytest.mark.parametrize(
    ("readme", "found"),
    [
        ("| `--admin-host ADDRESS` | 127.0.0.1 | x |", {"--admin-host": "127.0.0.1"}),
        ("| `--admin` | on | x |", {"--admin": "on"}),
        ("see `--admin` in the text, | `--admin` | not a row", {}),
    ],
)
def test_rows_are_matched_by_whole_flag(readme: str, found: dict[str, str]) -> None:
    """``--admin`` is not documented by ``--admin-host``'s row (a prefix is not a name)."""
    assert documented(readme) == found


def test_every_option_is_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    shown = capsys.readouterr().out
    assert [o.flag for o in OPTIONS if o.flag not in shown] == []


def test_the_quick_start_has_exactly_the_two_setup_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick.strip().splitlines()]
    assert commands == ["scripts/serve", "scripts/test"]
