"""Settings: precedence of flags, environment and config file; [[share]] and [[user]]
tables; every refusal names the setting and says why."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields, replace
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import (
    OPTIONS,
    AuthSettings,
    ByteSize,
    EngineSettings,
    Grant,
    LimitSettings,
    OpsSettings,
    Policy,
    ServerSettings,
    Settings,
    SettingsError,
    Source,
    StoreSettings,
    load_settings,
    parse_jail,
    parse_mount,
)
from gateway.settings.options import SECTIONS
from tests.auth.support import bcrypt_hash

HASH = bcrypt_hash("pw")


def load(config: str | None = None, tmp_path: Path | None = None, *, source: str | None = None,
         env: dict[str, str] | None = None, **flags: Any) -> Settings:
    path = None
    if config is not None:
        assert tmp_path is not None
        file = tmp_path / "bucketdav.toml"
        file.write_text(config)
        path = str(file)
    return load_settings(flags, source, path, env or {})


class TestPrecedence:
    def test_defaults(self) -> None:
        s = load(source="s3://bucket/pre")
        assert s.server.port == 8080
        assert s.limits.max_xml_bytes == 1024 * 1024
        assert s.limits.max_upload_size is None
        assert s.ops.admin and s.ops.admin_port == 9180 and s.ops.admin_host == "127.0.0.1"
        assert s.auth.anonymous == "off" and not s.auth.enabled
        assert s.shares[0].mount == "/"
        assert s.shares[0].source == Source("s3", "bucket", "pre/")

    def test_flags_beat_env_beat_file(self, tmp_path: Path) -> None:
        config = "port = 1\nmax_uploads = 1\nlog_format = 'json'\n"
        env = {"BUCKETDAV_PORT": "2", "BUCKETDAV_MAX_UPLOADS": "2"}
        s = load(config, tmp_path, env=env, port=3)
        assert s.server.port == 3
        assert s.limits.max_uploads == 2
        assert s.ops.log_format == "json"

    def test_sizes_take_suffixes(self) -> None:
        s = load(env={"BUCKETDAV_MAX_UPLOAD_SIZE": "5G"}, max_xml_bytes="64K")
        assert s.limits.max_upload_size == 5 * 1024**3
        assert s.limits.max_xml_bytes == 64 * 1024

    @pytest.mark.parametrize(
        ("text", "value"),
        [("1024", 1024), ("1k", 1024), ("2M", 2 << 20), ("1.5GiB", 3 << 29), ("3TB", 3 << 40)],
    )
    def test_byte_sizes(self, text: str, value: int) -> None:
        assert ByteSize(text) == value

    def test_a_bad_size_names_the_setting(self) -> None:
        with pytest.raises(SettingsError, match="max_upload_size must be a size such as"):
            load(max_upload_size="lots")

    def test_choices_are_checked(self) -> None:
        with pytest.raises(SettingsError, match="log_format must be one of text, json"):
            load(env={"BUCKETDAV_LOG_FORMAT": "xml"})
        with pytest.raises(SettingsError, match="anonymous must be one of"):
            load(anonymous="yes")

    def test_unknown_config_keys_are_refused(self, tmp_path: Path) -> None:
        with pytest.raises(SettingsError, match=r"unknown setting.*prot"):
            load("prot = 1\n", tmp_path)

    def test_settings_are_frozen(self) -> None:
        s = load()
        with pytest.raises(FrozenInstanceError):
            s.limits.max_uploads = 3  # type: ignore[misc]



class TestOptionTable:
    """Each option is a settings field, its default written once, on the field."""

    def test_nothing_set_gives_the_defaults_of_the_settings_classes(self) -> None:
        s = load(source="s3://bucket")
        assert s.server == ServerSettings()
        assert s.limits == LimitSettings()
        assert s.ops == OpsSettings()
        assert s.auth == AuthSettings()
        assert s.shares[0].store == StoreSettings()
        assert s.shares[0].policy == Policy()
        assert replace(s.engine, memory_target=EngineSettings().memory_target) == (
            EngineSettings())

    def test_a_computed_default_follows_what_it_is_computed_from(self) -> None:
        s = load(part_size=16)
        assert s.engine.read_part_size == s.engine.write_part_size == 16
        assert load(part_size=16, read_part_size=4).engine.read_part_size == 4

    def test_options_live_in_the_settings_their_help_group_names(self) -> None:
        """Only the TLS files are listed under security while they stay server settings
        (the server listens with them)."""
        owner = {f.name: group for group, cls in SECTIONS for f in fields(cls)}
        assert {o.name for o in OPTIONS if owner[o.name] != o.group} == {"tls_cert", "tls_key"}

    def test_limits_and_operations_read_from_every_source(self, tmp_path: Path) -> None:
        s = load("max_url_bytes = 2000\nlog_level = 'warning'\n", tmp_path)
        assert s.limits.max_url_bytes == 2000 and s.ops.log_level == "warning"
        s = load(env={"BUCKETDAV_MAX_URL_BYTES": "3000", "BUCKETDAV_LOG_LEVEL": "debug"})
        assert s.limits.max_url_bytes == 3000 and s.ops.log_level == "debug"
        with pytest.raises(SettingsError, match="log_level must be one of debug, info"):
            load(log_level="loud")


SHARES = """
read_only = true
region = "eu-west-1"

[[share]]
path = "/photos/"
source = "s3://team-photos/"
read_only = false
allow_delete = true
endpoint_url = "http://minio:9000"
force_path_style = true

[[share]]
path = "/docs"
source = "r2://docs/handbook"
account_id = "abc123"
max_connections = 8
"""


class TestShares:
    def test_tables_mount_several_sources(self, tmp_path: Path) -> None:
        s = load(SHARES, tmp_path)
        photos, docs = s.shares
        assert photos.mount == "/photos/" and photos.name == "photos"
        assert photos.source == Source("s3", "team-photos", "")
        assert photos.store.endpoint_url == "http://minio:9000" and photos.store.force_path_style
        assert not photos.policy.read_only and photos.policy.allow_delete
        assert photos.store.region == "eu-west-1"  # top-level values are defaults
        assert docs.mount == "/docs/"
        assert docs.source == Source("r2", "docs", "handbook/")
        assert docs.policy.read_only and not docs.policy.allow_delete
        assert docs.store.account_id == "abc123" and docs.store.max_connections == 8

    def test_a_flag_wins_over_every_share(self, tmp_path: Path) -> None:
        """``--read-only`` for maintenance makes every share read-only."""
        s = load(SHARES, tmp_path, read_only=True)
        assert all(share.policy.read_only for share in s.shares)

    def test_one_source_is_served_at_the_root(self) -> None:
        s = load(source="/tmp")
        assert [share.mount for share in s.shares] == ["/"]

    def test_source_and_tables_conflict(self, tmp_path: Path) -> None:
        with pytest.raises(SettingsError, match=r"either a SOURCE .* or \[\[share\]\]"):
            load(SHARES, tmp_path, source="s3://other")

    @pytest.mark.parametrize(
        ("paths", "message"),
        [
            (["/a/", "/a"], "two shares are mounted at /a/"),
            (["/a/", "/a/b/"], "share /a/b/ lies inside share /a/: mounts must not nest"),
            (["/", "/b/"], "share /b/ lies inside share /: mounts must not nest"),
            (["/a/../b/"], "not a valid name"),
            (["relative/"], "must start with '/'"),
            (["/a//b/"], "not a valid name"),
        ],
    )
    def test_bad_mounts_are_refused(self, tmp_path: Path, paths: list[str], message: str
                                    ) -> None:
        config = "".join(f'[[share]]\npath = "{p}"\nsource = "s3://b{i}"\n'
                         for i, p in enumerate(paths))
        with pytest.raises(SettingsError, match=message):
            load(config, tmp_path)

    def test_nested_mounts_one_level_apart_are_fine(self, tmp_path: Path) -> None:
        config = ('[[share]]\npath = "/team/photos/"\nsource = "s3://a"\n'
                  '[[share]]\npath = "/team/docs/"\nsource = "s3://b"\n')
        assert [s.mount for s in load(config, tmp_path).shares] == ["/team/photos/",
                                                                    "/team/docs/"]

    def test_unknown_share_keys_are_refused(self, tmp_path: Path) -> None:
        with pytest.raises(SettingsError, match=r"\[\[share\]\] #1: unknown key.*port"):
            load('[[share]]\npath = "/a/"\nsource = "s3://a"\nport = 1\n', tmp_path)

    def test_mount_and_jail_normalisation(self) -> None:
        assert parse_mount("/photos") == "/photos/"
        assert parse_mount("/") == "/"
        assert parse_jail("home/alice", "x") == "home/alice/"
        assert parse_jail("/home/alice/", "x") == "home/alice/"
        with pytest.raises(SettingsError, match="not a valid name"):
            parse_jail("home/../etc", "x")


USERS = f"""
[[share]]
path = "/photos/"
source = "s3://photos"

[[share]]
path = "/docs/"
source = "s3://docs"

[[user]]
name = "alice"
password_hash = "{HASH}"

[[user]]
name = "bob"
password_hash = "{HASH}"
read_only = true
shares = ["photos"]

[[user]]
name = "carol"
password_hash = "{HASH}"
jail = "carol"
shares = {{ photos = "read-write", docs = {{ access = "read-only", jail = "public" }} }}
"""


class TestUsers:
    def test_users_and_their_grants(self, tmp_path: Path) -> None:
        auth = load(USERS, tmp_path).auth
        alice, bob, carol = auth.users
        assert alice.grants == (Grant("*"),)
        assert bob.grants == (Grant("photos", read_only=True),)
        assert carol.grants == (
            Grant("photos", read_only=False, jail="carol/"),
            Grant("docs", read_only=True, jail="public/"),
        )
        assert auth.passwords and auth.enabled

    def test_a_plain_password_is_refused_and_the_error_says_why(self, tmp_path: Path) -> None:
        config = '[[user]]\nname = "dave"\npassword = "hunter2"\n'
        with pytest.raises(SettingsError) as info:
            load(config, tmp_path, source="/tmp")
        message = str(info.value)
        assert "plain-text passwords are not accepted" in message
        assert "bcrypt" in message and "htpasswd -nB" in message
        assert "hunter2" not in message

    def test_a_hash_that_is_not_bcrypt_is_refused(self, tmp_path: Path) -> None:
        config = '[[user]]\nname = "dave"\npassword_hash = "5f4dcc3b5aa765d61d8327deb882cf99"\n'
        with pytest.raises(SettingsError, match="not a bcrypt hash"):
            load(config, tmp_path, source="/tmp")

    def test_an_unknown_share_is_refused(self, tmp_path: Path) -> None:
        config = USERS + f'[[user]]\nname = "erin"\npassword_hash = "{HASH}"\nshares = ["pics"]\n'
        with pytest.raises(SettingsError, match=r"no share named 'pics'.*'photos', 'docs'"):
            load(config, tmp_path)

    @pytest.mark.parametrize(
        ("table", "message"),
        [
            ('name = "a:b"', "without ':'"),
            ('name = "x"\nshares = {{ photos = "admin" }}', "read-only.*read-write"),
            ('name = "x"\nrole = "admin"', "unknown key.*role"),
        ],
    )
    def test_bad_user_tables(self, tmp_path: Path, table: str, message: str) -> None:
        with pytest.raises(SettingsError, match=message):
            load(USERS + "[[user]]\n" + table.format() + "\n", tmp_path)

    def test_duplicate_users(self, tmp_path: Path) -> None:
        config = USERS + f'[[user]]\nname = "alice"\npassword_hash = "{HASH}"\n'
        with pytest.raises(SettingsError, match="user 'alice' is defined twice"):
            load(config, tmp_path)


class TestSecurity:
    def test_passwords_over_plain_http_on_a_public_address_are_refused(
        self, tmp_path: Path
    ) -> None:
        with pytest.raises(SettingsError) as info:
            load(USERS, tmp_path, host="0.0.0.0")
        message = str(info.value)
        assert "clear text" in message and "--tls-cert" in message
        assert "--allow-insecure-auth" in message and "Windows" in message

    def test_unless_explicitly_allowed_or_on_loopback_or_over_tls(self, tmp_path: Path) -> None:
        assert load(USERS, tmp_path, host="0.0.0.0", allow_insecure_auth=True).auth.users
        assert load(USERS, tmp_path, host="::1").auth.users
        assert load(USERS, tmp_path, host="localhost").auth.users
        cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
        cert.write_text("x")
        key.write_text("x")
        s = load(USERS, tmp_path, host="0.0.0.0", tls_cert=str(cert), tls_key=str(key))
        assert s.server.tls

    def test_htpasswd_counts_as_passwords(self, tmp_path: Path) -> None:
        htpasswd = tmp_path / "htpasswd"
        htpasswd.write_text("")
        with pytest.raises(SettingsError, match="clear text"):
            load(host="0.0.0.0", htpasswd=str(htpasswd))

    def test_anonymous_only_needs_no_tls(self) -> None:
        s = load(host="0.0.0.0", anonymous="read-only")
        assert s.auth.enabled and not s.auth.passwords

    def test_tls_needs_both_files(self, tmp_path: Path) -> None:
        cert = tmp_path / "c.pem"
        cert.write_text("x")
        with pytest.raises(SettingsError, match="--tls-cert and --tls-key go together"):
            load(tls_cert=str(cert))
        with pytest.raises(SettingsError, match="is not a readable file"):
            load(tls_cert=str(cert), tls_key=str(tmp_path / "missing.pem"))
