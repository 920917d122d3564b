"""Passwords, users and rights as pure parts: Basic parsing, bcrypt checks, the failure
throttle, htpasswd files, and the rights decision."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import bcrypt
import pytest

from gateway.auth import basic as basic_module
from gateway.auth.basic import Authenticator, parse_basic
from gateway.auth.htpasswd import HtpasswdError, HtpasswdFile, parse_htpasswd
from gateway.auth.throttle import FailureThrottle, LoginThrottle
from gateway.auth.users import User, refusal
from gateway.settings import AuthSettings, Grant, UserSettings
from tests.auth.support import bcrypt_hash


def token(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


class TestParseBasic:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            pytest.param(token("alice:s3cret:with:colons"), ("alice", "s3cret:with:colons"),
                         id="colons belong to the password"),
            pytest.param("basic " + base64.b64encode(b"a:b").decode(), ("a", "b"),
                         id="the scheme is case-insensitive"),
            pytest.param(token("zoë:pässwörd"), ("zoë", "pässwörd"), id="utf-8 credentials"),
        ],
    )
    def test_name_and_password(self, header: str, expected: tuple[str, str]) -> None:
        assert parse_basic(header) == expected

    @pytest.mark.parametrize(
        "header",
        ["Bearer abc", "Basic", "Basic !!!notbase64", token("no-colon"), token(":nameless")],
    )
    def test_malformed_is_none(self, header: str) -> None:
        assert parse_basic(header) is None


class TestThrottle:
    def test_allows_a_burst_then_asks_to_wait(self) -> None:
        now = [0.0]
        throttle = FailureThrottle(burst=3, refill=10.0, clock=lambda: now[0])
        for _ in range(3):
            assert throttle.retry_after("1.2.3.4") == 0
            throttle.failed("1.2.3.4")
        assert throttle.retry_after("1.2.3.4") == pytest.approx(10.0)
        assert throttle.retry_after("5.6.7.8") == 0  # other addresses are not affected

    def test_refills_over_time(self) -> None:
        now = [0.0]
        throttle = FailureThrottle(burst=2, refill=10.0, clock=lambda: now[0])
        throttle.failed("a")
        throttle.failed("a")
        now[0] = 4.0
        assert throttle.retry_after("a") == pytest.approx(6.0)
        now[0] = 10.0
        assert throttle.retry_after("a") == 0

    def test_map_is_bounded(self) -> None:
        throttle = FailureThrottle(max_clients=100)
        for i in range(1000):
            throttle.failed(f"10.0.{i // 256}.{i % 256}")
        assert len(throttle) == 100


class TestLoginThrottle:
    def test_keyed_on_address_and_user(self) -> None:
        # a clock that stands still: the wait asked for is exact, however slow the machine
        still = lambda: 0.0  # noqa: E731
        throttle = LoginThrottle(
            per_client=FailureThrottle(burst=3, refill=60.0, clock=still), clock=still
        )
        for _ in range(3):
            assert throttle.check("10.0.0.1", "alice") is None
            throttle.failed("10.0.0.1", "alice")
        refused = throttle.check("10.0.0.1", "alice")
        assert refused is not None and refused.retry_after == pytest.approx(60.0)
        assert throttle.check("10.0.0.1", "bob") is None  # another user at that address
        assert throttle.check("10.0.0.2", "alice") is None  # the user elsewhere

    def test_one_budget_per_account_across_addresses(self) -> None:
        throttle = LoginThrottle(per_account=FailureThrottle(burst=5, refill=60.0))
        throttle.succeeded("10.0.0.1", "alice")  # where alice works
        for i in range(5):
            throttle.failed(f"203.0.113.{i}", "alice")
        refused = throttle.check("203.0.113.99", "alice")
        assert refused is not None and "for this user" in refused.reason
        assert throttle.check("10.0.0.1", "alice") is None  # her own address still tries
        assert throttle.check("203.0.113.99", "bob") is None

    def test_a_success_starts_the_address_over(self) -> None:
        throttle = LoginThrottle(per_client=FailureThrottle(burst=2, refill=60.0))
        throttle.failed("a", "alice")
        throttle.failed("a", "alice")
        assert throttle.check("a", "alice") is not None
        throttle.succeeded("a", "alice")
        assert throttle.check("a", "alice") is None

    def test_long_names_are_keyed_by_a_digest(self) -> None:
        throttle = LoginThrottle()
        throttle.failed("a", "x" * 8000)
        assert all(len(key) < 100 for key in throttle.per_client._buckets)
        assert all(len(key) < 100 for key in throttle.per_account._buckets)


class TestHtpasswd:
    def test_bcrypt_entries_comments_and_blank_lines(self) -> None:
        text = "# users\n\nalice:$2y$05$" + "a" * 53 + "\nbob:$2b$04$" + "b" * 53 + "\n"
        assert set(parse_htpasswd(text, "f")) == {"alice", "bob"}

    @pytest.mark.parametrize(
        "line",
        ["carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "dave:$apr1$abc$def", "erin:plaintext"],
    )
    def test_other_schemes_are_refused_naming_the_line(self, line: str) -> None:
        with pytest.raises(HtpasswdError, match=r"line 1 .*only bcrypt"):
            parse_htpasswd(line, "f")

    def test_reloaded_when_the_file_changes(self, tmp_path: Path) -> None:
        path = tmp_path / "htpasswd"
        path.write_text(f"alice:{bcrypt_hash('one')}\n")
        now = [0.0]
        users = HtpasswdFile(str(path), clock=lambda: now[0])
        assert set(users.users()) == {"alice"}
        path.write_text(f"alice:{bcrypt_hash('one')}\nbob:{bcrypt_hash('two')}\n")
        os.utime(path, ns=(1, 1))  # a different mtime, whatever the clock's resolution
        now[0] = 5.0
        assert set(users.users()) == {"alice", "bob"}

    def test_a_broken_edit_keeps_the_previous_users(self, tmp_path: Path) -> None:
        path = tmp_path / "htpasswd"
        path.write_text(f"alice:{bcrypt_hash('one')}\n")
        now = [0.0]
        users = HtpasswdFile(str(path), clock=lambda: now[0])
        path.write_text("alice:plain-text-oops\n")
        os.utime(path, ns=(2, 2))
        now[0] = 5.0
        assert set(users.users()) == {"alice"}

    def test_a_bad_file_at_startup_is_an_error(self, tmp_path: Path) -> None:
        path = tmp_path / "htpasswd"
        path.write_text("alice:plain\n")
        with pytest.raises(HtpasswdError, match="only bcrypt"):
            HtpasswdFile(str(path))


class TestAuthenticator:
    async def test_right_and_wrong_passwords(self) -> None:
        auth = Authenticator(AuthSettings(users=(UserSettings("alice", bcrypt_hash("pw")),)))
        user = await auth.login("alice", "pw")
        assert user is not None and user.name == "alice"
        assert await auth.login("alice", "wrong") is None

    async def test_an_unknown_name_is_checked_against_a_dummy_hash(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A missing user costs one bcrypt check, like a wrong password does."""
        checked: list[bytes] = []
        real = basic_module._check

        def spy(password: bytes, hashed: bytes) -> bool:
            checked.append(hashed)
            return real(password, hashed)

        monkeypatch.setattr(basic_module, "_check", spy)
        auth = Authenticator(AuthSettings(users=(UserSettings("alice", bcrypt_hash("pw")),)))
        assert await auth.login("mallory", "pw") is None
        assert len(checked) == 1
        assert checked[0].startswith(b"$2b$04$")  # the cost of the real hashes

    async def test_success_is_remembered_without_storing_the_password(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls: list[int] = []
        real = basic_module._check
        monkeypatch.setattr(
            basic_module, "_check", lambda p, h: calls.append(1) or real(p, h)
        )
        # Long enough that no remembered key (a random 32-byte MAC) holds it by chance, as a
        # two-byte password did about once in 2,000 runs.
        pw = "a password of some length"
        auth = Authenticator(AuthSettings(users=(UserSettings("alice", bcrypt_hash(pw)),)))
        assert await auth.login("alice", pw) is not None
        assert await auth.login("alice", pw) is not None
        assert len(calls) == 1
        remembered = list(auth._verified.keys())
        assert all(pw.encode() not in key for key in remembered)
        assert await auth.login("alice", "other") is None  # not remembered: checked

    async def test_config_hash_and_htpasswd_users(self, tmp_path: Path) -> None:
        path = tmp_path / "htpasswd"
        path.write_text(f"bob:{bcrypt_hash('bobpw')}\n")
        grants = (Grant("photos", read_only=True),)
        auth = Authenticator(AuthSettings(
            users=(UserSettings("bob", None, grants),), htpasswd=str(path),
        ))
        user = await auth.login("bob", "bobpw")
        assert user == User("bob", grants)  # rights from the config, password from the file

    def test_accounts_that_cannot_log_in_are_reported(self) -> None:
        auth = Authenticator(AuthSettings(users=(UserSettings("ghost", None),)))
        assert any("ghost" in w for w in auth.prepare())

    async def test_long_passwords_use_bcrypts_72_bytes(self) -> None:
        hashed = bcrypt.hashpw(b"x" * 72, bcrypt.gensalt(4)).decode()
        auth = Authenticator(AuthSettings(users=(UserSettings("long", hashed),)))
        assert await auth.login("long", "x" * 100) is not None


class TestRights:
    def test_no_grant_no_access(self) -> None:
        user = User("alice", (Grant("photos"),))
        assert refusal(user, "docs", "GET") == "alice has no access to /docs/"
        assert refusal(user, "photos", "PUT") is None

    @pytest.mark.parametrize(
        ("method", "writes"),
        [(m, True) for m in ("PUT", "DELETE", "MKCOL", "MOVE", "COPY", "PROPPATCH", "LOCK",
                             "UNLOCK")]
        + [(m, False) for m in ("GET", "HEAD", "OPTIONS", "PROPFIND")],
    )
    def test_read_only_may_read_and_no_write_method(self, method: str, writes: bool) -> None:
        reason = refusal(User("bob", (Grant("*", read_only=True),)), "photos", method)
        if writes:
            assert reason is not None and "may only read" in reason
        else:
            assert reason is None

    def test_an_own_grant_wins_over_the_wildcard(self) -> None:
        user = User("carol", (Grant("*", read_only=True), Grant("inbox")))
        assert refusal(user, "inbox", "PUT") is None
        assert refusal(user, "photos", "PUT") is not None
