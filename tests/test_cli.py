"""The command line: ``--help`` lists every option once, in its group, with its env
variable; bad settings stop the command with exit status 2 and one clear line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway import cli
from gateway.cli import GROUP_TITLES, build_parser, main
from gateway.settings import OPTIONS


@pytest.fixture(scope="module")
def help_text() -> str:
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    text: str = serve.format_help()
    return text


def test_help_lists_every_option_in_its_group(help_text: str) -> None:
    sections = re.split(r"\n(?=\S[^\n]*:\n)", help_text)
    by_title = {s.split(":\n", 1)[0]: s for s in sections}
    for option in OPTIONS:
        section = by_title[GROUP_TITLES[option.group]]
        assert option.flag in section, option.name
        assert f"[{option.env}]" in section.replace("\n", " ").replace("  ", ""), option.name


def test_help_shows_choices_and_human_sizes(help_text: str) -> None:
    flat = " ".join(help_text.split())
    assert "(text | json)" in flat
    assert "(off | read-only | read-write)" in flat
    assert "(default: 1M)" in flat


def test_a_plain_password_in_the_config_stops_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[[user]]\nname = "dave"\npassword = "hunter2"\n')
    assert main(["serve", str(tmp_path), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bucketdav: ") and "plain-text passwords are not accepted" in err
    assert "hunter2" not in err


def test_insecure_auth_stops_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("")
    code = main(["serve", str(tmp_path), "--host", "0.0.0.0", "--htpasswd", str(htpasswd)])
    assert code == 2
    assert "clear text" in capsys.readouterr().err


def test_an_unknown_choice_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--log-format", "xml"])
    assert info.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_the_process_keeps_one_malloc_arena_from_before_its_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(cli, "one_arena", lambda: calls.append("one arena") or True)

    async def serving() -> int:
        calls.append("event loop")
        return 0

    assert cli._run(serving()) == 0
    assert calls == ["one arena", "event loop"]
