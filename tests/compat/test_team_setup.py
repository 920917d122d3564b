"""A team setup end to end: three shares, two users, https; curl, rclone and davfs2.

One ``bucketdav serve --config`` process (with a certificate from a test CA) serves

* ``/photos/``  -> a moto bucket (default semantics: no overwrite, delete or rename),
* ``/models/``  -> the prefix ``models/`` of a second moto bucket, with allow_delete,
* ``/scratch/`` -> a local folder, with allow_overwrite and allow_delete,

to two users: ``reader`` may read every share and write none; ``alice`` may write
``/scratch/`` and ``/photos/``, but sees ``/photos/`` rooted at the key prefix ``alice/``
(her jail) and has no access to ``/models/``. Each test drives a real client the way a
person would and checks the result in the bucket or folder itself, never only through
the gateway.
"""

from __future__ import annotations

import contextlib
import filecmp
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import trustme

from tests.auth.support import bcrypt_hash
from tests.compat.conftest import require_tool
from tests.gatewayproc import bucketdav
from tests.servers import client, create_bucket

pytestmark = pytest.mark.compat

READER, READER_PASSWORD = "reader", "reader-pw-5b9e1c"
ALICE, ALICE_PASSWORD = "alice", "alice-pw-0d7f42"

OWN = b"alice's own photo\n"
SECRET = b"bob's secret photo: alice must never see or touch this\n"
WEIGHTS = hashlib.shake_256(b"weights").digest(200 * 1024)
PHOTOS = {"alice/own.jpg": OWN, "bob/secret.jpg": SECRET, "team.jpg": b"the whole team\n"}
MODELS = {
    "models/weights.bin": WEIGHTS,
    "models/config.json": b'{"layers": 3}\n',
    "elsewhere.txt": b"outside the share's prefix\n",
}
SCRATCH = {"notes.txt": b"scratch notes\n"}

TIMEOUT = 120  # seconds for any one client command


# ---- the running setup -------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def names(self) -> list[str]:
        """The entry names of a JSON listing."""
        listing: dict[str, Any] = json.loads(self.body)
        return sorted(entry["name"] for entry in listing["entries"])


@dataclass(frozen=True)
class Team:
    url: str  # https://127.0.0.1:PORT
    ca: Path  # PEM of the test CA that signed the server certificate
    endpoint: str  # moto
    photos: str  # bucket behind /photos/
    models: str  # bucket behind /models/ (prefix models/)
    scratch: Path  # folder behind /scratch/

    def curl(
        self,
        method: str,
        path: str,
        user: str | None = None,
        password: str = "",
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send ``method path`` exactly as written (``--path-as-is``: no dot-segment
        clean-up by curl) over https, trusting only the test CA."""
        curl = require_tool("curl")
        with tempfile.TemporaryDirectory(prefix="team-curl-") as tmp:
            head, body, upload = Path(tmp, "head"), Path(tmp, "body"), Path(tmp, "upload")
            args = [
                curl, "-sS", "--max-time", "30", "--path-as-is", "--cacert", str(self.ca),
                "-X", method, "-D", str(head), "-o", str(body), "-w", "%{http_code}",
            ]
            if user is not None:
                args += ["-u", f"{user}:{password}"]
            for name, value in (headers or {}).items():
                args += ["-H", f"{name}: {value}"]
            if data is not None:
                upload.write_bytes(data)
                args += ["-H", "Content-Type: application/octet-stream",
                         "--data-binary", f"@{upload}"]
            done = subprocess.run(
                [*args, self.url + path], capture_output=True, text=True, timeout=60,
                check=False,
            )
            assert done.returncode == 0, f"curl {method} {path}: {done.stderr}"
            # The last header block is the final response (after any 100 Continue).
            block = head.read_bytes().decode("latin-1").strip().split("\r\n\r\n")[-1]
            fields = {}
            for line in block.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            return Reply(int(done.stdout), fields, body.read_bytes() if body.exists() else b"")

    def as_reader(self, method: str, path: str, **kw: Any) -> Reply:
        return self.curl(method, path, READER, READER_PASSWORD, **kw)

    def as_alice(self, method: str, path: str, **kw: Any) -> Reply:
        return self.curl(method, path, ALICE, ALICE_PASSWORD, **kw)


def write_pki(folder: Path) -> tuple[Path, Path, Path]:
    """(CA, server chain, server key) for 127.0.0.1 and localhost."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_pem, chain, key = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key))
    return ca_pem, chain, key


def toml(text: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML)."""
    return json.dumps(text)


def write_config(path: Path, endpoint: str, photos: str, models: str, scratch: Path) -> None:
    s3 = f"endpoint_url = {toml(endpoint)}\nforce_path_style = true\nregion = \"us-east-1\"\n"
    path.write_text(
        "[[share]]\n"
        'path = "/photos/"\n'
        f"source = {toml(f's3://{photos}/')}\n" + s3 + "\n"
        "[[share]]\n"
        'path = "/models/"\n'
        f"source = {toml(f's3://{models}/models/')}\n" + s3 + "allow_delete = true\n\n"
        "[[share]]\n"
        'path = "/scratch/"\n'
        f"source = {toml(str(scratch))}\n"
        "allow_overwrite = true\nallow_delete = true\n\n"
        "[[user]]\n"
        f"name = {toml(READER)}\n"
        f"password_hash = {toml(bcrypt_hash(READER_PASSWORD))}\n"
        "read_only = true\n\n"
        "[[user]]\n"
        f"name = {toml(ALICE)}\n"
        f"password_hash = {toml(bcrypt_hash(ALICE_PASSWORD))}\n"
        'shares = { scratch = "read-write", photos = { access = "read-write", '
        'jail = "alice/" } }\n',
        "utf-8",
    )


@pytest.fixture(scope="module")
def team(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    folder = tmp_path_factory.mktemp("team")
    ca, chain, key = write_pki(folder)
    s3 = client(moto_server)
    photos, models = create_bucket(moto_server), create_bucket(moto_server)
    for bucket, objects in ((photos, PHOTOS), (models, MODELS)):
        for name, data in objects.items():
            s3.put_object(Bucket=bucket, Key=name, Body=data)
    scratch = folder / "scratch"
    scratch.mkdir()
    for name, data in SCRATCH.items():
        (scratch / name).write_bytes(data)
    config = folder / "team.toml"
    write_config(config, moto_server, photos, models, scratch)
    with bucketdav(
        "--config", str(config), "--tls-cert", str(chain), "--tls-key", str(key),
        "--admin-port", "0",
    ) as server:
        assert server.url.startswith("https://127.0.0.1:"), server.output()
        yield Team(server.url, ca, moto_server, photos, models, scratch)
        output = server.output()
    # Whatever the clients sent, the gateway answered with statuses, not tracebacks.
    assert "Traceback" not in output, output


# ---- the backends, seen directly --------------------------------------------------------


def bucket_state(team: Team, bucket: str) -> dict[str, tuple[str, str]]:
    """key -> (ETag, LastModified) of every object in ``bucket``."""
    state: dict[str, tuple[str, str]] = {}
    pages = client(team.endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    for page in pages:
        for obj in page.get("Contents", []):
            state[obj["Key"]] = (obj["ETag"], obj["LastModified"].isoformat())
    return state


def read_object(team: Team, bucket: str, key: str) -> bytes:
    data: bytes = client(team.endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def folder_state(folder: Path) -> dict[str, bytes]:
    """relative path -> content of every file under ``folder`` (folders end in /)."""
    state: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        state[rel + "/" if path.is_dir() else rel] = b"" if path.is_dir() else path.read_bytes()
    return state


def top_names(keys: Iterable[str], prefix: str = "") -> list[str]:
    """The names a listing of ``prefix`` must show: the first component of each key."""
    return sorted(
        {k[len(prefix):].split("/")[0] for k in keys if k.startswith(prefix) and k != prefix}
    )


# ---- 1. curl -----------------------------------------------------------------------------


def test_without_valid_credentials_everything_is_401_with_a_basic_challenge(
    team: Team,
) -> None:
    for method, path in (("GET", "/"), ("OPTIONS", "/"), ("PROPFIND", "/"),
                         ("GET", "/photos/team.jpg"), ("PUT", "/scratch/anon.txt"),
                         ("GET", "/models/weights.bin")):
        reply = team.curl(method, path, data=b"x" if method == "PUT" else None)
        assert reply.status == 401, (method, path)
        assert reply.headers["www-authenticate"] == 'Basic realm="bucketdav"'
        assert SECRET not in reply.body and WEIGHTS[:64] not in reply.body
    wrong = team.curl("GET", "/photos/team.jpg", READER, "not-the-password")
    assert wrong.status == 401 and wrong.headers["www-authenticate"].startswith("Basic ")
    stranger = team.curl("GET", "/photos/team.jpg", "mallory", READER_PASSWORD)
    assert stranger.status == 401
    assert not (team.scratch / "anon.txt").exists()


def test_reader_reads_every_share(team: Team) -> None:
    photos = team.as_reader("GET", "/photos/?format=json")
    assert photos.status == 200
    assert photos.names() == top_names(bucket_state(team, team.photos))
    assert {"alice", "bob", "team.jpg"} <= set(photos.names())
    models = team.as_reader("GET", "/models/?format=json")
    assert models.status == 200
    assert models.names() == top_names(bucket_state(team, team.models), "models/")
    assert "elsewhere.txt" not in models.names()  # outside the share's prefix
    scratch = team.as_reader("GET", "/scratch/?format=json")
    assert scratch.status == 200
    assert scratch.names() == sorted(os.listdir(team.scratch))
    assert team.as_reader("GET", "/photos/bob/secret.jpg").body == SECRET
    assert team.as_reader("GET", "/photos/alice/own.jpg").body == OWN
    assert team.as_reader("GET", "/models/weights.bin").body == WEIGHTS
    assert team.as_reader("GET", "/scratch/notes.txt").body == SCRATCH["notes.txt"]
    propfind = team.as_reader("PROPFIND", "/models/", headers={"Depth": "1"})
    assert propfind.status == 207 and b"/models/weights.bin" in propfind.body


def test_reader_gets_403_for_every_write_and_nothing_changes(team: Team) -> None:
    before = (bucket_state(team, team.photos), bucket_state(team, team.models),
              folder_state(team.scratch))
    existing = {"photos": "bob/secret.jpg", "models": "weights.bin", "scratch": "notes.txt"}
    for share, name in existing.items():
        base = f"/{share}/"
        attempts = [
            ("PUT", base + "new-by-reader.txt", b"new"),
            ("PUT", base + name, b"overwritten by reader"),
            ("DELETE", base + name, None),
            ("MKCOL", base + "folder-by-reader/", None),
        ]
        for method, path, data in attempts:
            reply = team.as_reader(method, path, data=data)
            assert reply.status == 403, (method, path, reply.status, reply.body)
            assert base.encode() in reply.body  # the refusal names the share
        moved = team.as_reader("MOVE", base + name,
                               headers={"Destination": f"{team.url}{base}moved-by-reader"})
        assert moved.status == 403
    after = (bucket_state(team, team.photos), bucket_state(team, team.models),
             folder_state(team.scratch))
    assert after == before


def test_alice_sees_only_her_jail_in_photos(team: Team) -> None:
    listing = team.as_alice("GET", "/photos/?format=json")
    assert listing.status == 200
    assert listing.names() == top_names(bucket_state(team, team.photos), "alice/")
    assert "own.jpg" in listing.names()
    assert "bob" not in listing.names() and "alice" not in listing.names()
    assert b"secret" not in listing.body
    propfind = team.as_alice("PROPFIND", "/photos/", headers={"Depth": "1"})
    assert propfind.status == 207
    assert b"/photos/own.jpg" in propfind.body
    assert b"bob" not in propfind.body and b"/photos/alice/" not in propfind.body
    assert team.as_alice("GET", "/photos/own.jpg").body == OWN
    # Inside the jail, "bob/secret.jpg" is alice/bob/secret.jpg, which does not exist.
    assert team.as_alice("GET", "/photos/bob/secret.jpg").status == 404
    assert team.as_alice("GET", "/photos/alice/own.jpg").status == 404


def test_alice_has_no_access_to_models(team: Team) -> None:
    before = bucket_state(team, team.models)
    for method, path, data in (("GET", "/models/", None), ("GET", "/models/weights.bin", None),
                               ("PROPFIND", "/models/", None),
                               ("PUT", "/models/by-alice.txt", b"x"),
                               ("DELETE", "/models/weights.bin", None)):
        reply = team.as_alice(method, path, data=data)
        assert reply.status == 403, (method, path, reply.status)
        assert WEIGHTS[:64] not in reply.body
    assert bucket_state(team, team.models) == before


def test_alice_cannot_reach_outside_her_jail_by_any_path(team: Team) -> None:
    before = bucket_state(team, team.photos)
    traversals = [
        "/photos/../bob/secret.jpg",
        "/photos/%2e%2e/bob/secret.jpg",
        "/photos/%2E%2E/bob/secret.jpg",
        "/photos/..%2Fbob%2Fsecret.jpg",
        "/photos/..%5Cbob%5Csecret.jpg",
        "/photos/./../bob/secret.jpg",
        "/photos/../models/weights.bin",
    ]
    for path in traversals:
        for method, data in (("GET", None), ("PUT", b"overwritten by alice"),
                             ("DELETE", None)):
            reply = team.as_alice(method, path, data=data)
            # Documented: paths are decoded once and validated; traversal is 400.
            assert reply.status == 400, (method, path, reply.status, reply.body)
            assert SECRET not in reply.body and WEIGHTS[:64] not in reply.body
    # Destinations are resolved inside the same jailed share.
    outside = [
        f"{team.url}/photos/../bob/secret.jpg",
        f"{team.url}/photos/%2e%2e/bob/secret.jpg",
        "/photos/%2E%2E/bob/secret.jpg",
    ]
    for method in ("COPY", "MOVE"):
        for target in outside:
            reply = team.as_alice(method, "/photos/own.jpg",
                                  headers={"Destination": target, "Overwrite": "T"})
            assert reply.status == 400, (method, target, reply.status, reply.body)
        other_share = team.as_alice(method, "/photos/own.jpg",
                                    headers={"Destination": f"{team.url}/models/stolen.jpg"})
        assert other_share.status == 403, (method, other_share.status)
        # Named plainly, the target lies in the jail (alice/bob/...), whose parent is missing.
        inside = team.as_alice(method, "/photos/own.jpg",
                               headers={"Destination": f"{team.url}/photos/bob/secret.jpg"})
        assert inside.status == 409, (method, inside.status, inside.body)
        stolen = team.as_alice(method, "/photos/../bob/secret.jpg",
                               headers={"Destination": f"{team.url}/photos/stolen.jpg"})
        assert stolen.status == 400, (method, stolen.status)
    assert bucket_state(team, team.photos) == before
    assert read_object(team, team.photos, "bob/secret.jpg") == SECRET
    assert read_object(team, team.photos, "alice/own.jpg") == OWN


def test_alice_writes_in_her_jail_and_in_scratch_within_each_share_s_rules(
    team: Team,
) -> None:
    photos_before = bucket_state(team, team.photos)
    put = team.as_alice("PUT", "/photos/by-curl.txt", data=b"alice via curl\n")
    assert put.status == 201, put.body
    photos_after = bucket_state(team, team.photos)
    assert set(photos_after) - set(photos_before) == {"alice/by-curl.txt"}
    assert {k: v for k, v in photos_after.items() if k in photos_before} == photos_before
    assert read_object(team, team.photos, "alice/by-curl.txt") == b"alice via curl\n"
    # /photos/ keeps its default semantics: no overwrite and no delete, jail or not.
    assert team.as_alice("PUT", "/photos/own.jpg", data=b"replaced").status == 403
    assert team.as_alice("DELETE", "/photos/own.jpg").status == 403
    assert read_object(team, team.photos, "alice/own.jpg") == OWN
    # A Destination named plainly lies in the jail too.
    copied = team.as_alice("COPY", "/photos/own.jpg",
                           headers={"Destination": f"{team.url}/photos/copy-of-own.jpg"})
    assert copied.status == 201, copied.body
    assert read_object(team, team.photos, "alice/copy-of-own.jpg") == OWN
    assert "copy-of-own.jpg" not in bucket_state(team, team.photos)

    put = team.as_alice("PUT", "/scratch/by-curl.txt", data=b"scratch via curl\n")
    assert put.status == 201, put.body
    assert (team.scratch / "by-curl.txt").read_bytes() == b"scratch via curl\n"
    again = team.as_alice("PUT", "/scratch/by-curl.txt", data=b"overwritten\n")
    assert again.status == 204, again.body  # allow_overwrite: replaced, SEMANTICS says 204
    assert (team.scratch / "by-curl.txt").read_bytes() == b"overwritten\n"
    assert team.as_alice("DELETE", "/scratch/by-curl.txt").status == 204  # allow_delete
    assert not (team.scratch / "by-curl.txt").exists()


def test_root_lists_the_shares_each_user_may_see_and_takes_no_writes(team: Team) -> None:
    reader = team.as_reader("GET", "/?format=json")
    assert reader.status == 200 and reader.names() == ["models", "photos", "scratch"]
    alice = team.as_alice("GET", "/?format=json")
    assert alice.status == 200 and alice.names() == ["photos", "scratch"]
    propfind = team.as_alice("PROPFIND", "/", headers={"Depth": "1"})
    assert propfind.status == 207
    assert b"/photos/" in propfind.body and b"/scratch/" in propfind.body
    assert b"/models/" not in propfind.body
    assert team.as_alice("OPTIONS", "/").status == 200
    assert team.as_alice("PUT", "/stray.txt", data=b"x").status == 403
    assert team.as_alice("MKCOL", "/newshare/").status == 403
    assert team.as_alice("GET", "/nowhere/").status == 404


# ---- 2. rclone ---------------------------------------------------------------------------


def rclone(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require_tool("rclone")
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    return subprocess.run(
        [binary, "--config", "/dev/null", *args],
        capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False,
    )


def rclone_remote(team: Team, share: str, user: str, password: str) -> str:
    obscured = rclone("obscure", password)
    assert obscured.returncode == 0, obscured.stderr
    return (f":webdav,url='{team.url}/{share}/',vendor=other,user={user},"
            f"pass='{obscured.stdout.strip()}':")


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "hello.txt": b"hello from rclone\n",
        "empty.bin": b"",
        "sub/nested/data.bin": hashlib.shake_256(b"data").digest(300 * 1024),
        "sub/naïve café.txt": "naïve café ☕\n".encode(),
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_rclone_as_alice_copies_a_tree_into_scratch_and_back(
    team: Team, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    files = make_tree(source)
    remote = rclone_remote(team, "scratch", ALICE, ALICE_PASSWORD) + "rclone-tree"
    tls = ("--ca-cert", str(team.ca))
    copied = rclone("copy", *tls, str(source), remote)
    assert copied.returncode == 0, copied.stderr
    for name, data in files.items():
        assert (team.scratch / "rclone-tree" / name).read_bytes() == data, name
    checked = rclone("check", "--download", *tls, str(source), remote)
    assert checked.returncode == 0, checked.stderr
    back = tmp_path / "back"
    returned = rclone("copy", *tls, remote, str(back))
    assert returned.returncode == 0, returned.stderr
    for name, data in files.items():
        assert (back / name).read_bytes() == data, name
    cmp = filecmp.dircmp(source, back)
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files


def test_rclone_as_reader_cannot_write_into_photos(team: Team, tmp_path: Path) -> None:
    source = tmp_path / "source"
    make_tree(source)
    before = bucket_state(team, team.photos)
    remote = rclone_remote(team, "photos", READER, READER_PASSWORD)
    tls = ("--ca-cert", str(team.ca))
    # rclone can read the share (so a failure below is the refusal, not TLS or login).
    listed = rclone("lsf", *tls, remote)
    assert listed.returncode == 0, listed.stderr
    assert sorted(listed.stdout.split()) == ["alice/", "bob/", "team.jpg"]
    copied = rclone("copy", "--retries", "1", "--low-level-retries", "1", *tls,
                    str(source), remote + "from-reader")
    assert copied.returncode != 0, copied.stderr
    assert "403" in copied.stderr or "Forbidden" in copied.stderr, copied.stderr
    assert bucket_state(team, team.photos) == before


# ---- 3. davfs2 ---------------------------------------------------------------------------


def davfs_daemons(mnt: Path) -> list[psutil.Process]:
    """The mount.davfs processes serving ``mnt`` (the daemon keeps the mount's argv)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "mount.davfs" and str(mnt) in (proc.info["cmdline"] or []):
            found.append(proc)
    return found


def unmount(mnt: Path, daemons: list[psutil.Process]) -> bool:
    """Unmount and wait for the davfs2 daemon to finish its uploads and exit. False if it
    had to be forced (lazy unmount, then the daemon we started is killed by its pid)."""
    subprocess.run(["umount", str(mnt)], capture_output=True, timeout=TIMEOUT, check=False)
    # umount returns before mount.davfs has uploaded what is left and exited.
    _, alive = psutil.wait_procs(daemons, timeout=TIMEOUT)
    clean = not alive and not os.path.ismount(mnt)
    if os.path.ismount(mnt):
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=60,
                       check=False)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=30)
    return clean


@contextlib.contextmanager
def davfs_mount(team: Team, share: str, user: str, password: str, workdir: Path
                ) -> Iterator[Path]:
    """``https://.../<share>/`` mounted with davfs2 as ``user``, trusting the test CA."""
    mount_davfs = require_tool("mount.davfs")
    require_tool("umount")
    mnt = (workdir / "mnt").resolve()
    mnt.mkdir(parents=True)
    # mount.davfs reads its config and secrets as root, but opens the CA and the cache
    # after dropping to the davfs2 user, which cannot enter pytest's private tmp folders.
    public = Path(tempfile.mkdtemp(prefix="davfs-team-"))
    try:
        public.chmod(0o755)
        ca = public / "ca.pem"
        shutil.copyfile(team.ca, ca)
        ca.chmod(0o644)
        cache = public / "cache"
        cache.mkdir()
        cache.chmod(0o777)
        # Our own secrets file (mode 600, named in the user config), keyed by the mount
        # point: /etc/davfs2/secrets stays untouched and the password is never on argv.
        secrets = workdir / "secrets"
        secrets.write_text(f"{mnt} {user} {password}\n", "utf-8")
        secrets.chmod(0o600)
        conf = workdir / "davfs2.conf"
        # buf_size 64: needed by this kernel's FUSE; delay_upload 0: upload on close.
        conf.write_text(
            "buf_size 64\nask_auth 0\ndelay_upload 0\nuse_locks 1\ngui_optimize 0\n"
            f"cache_dir {cache}\ntrust_ca_cert {ca}\nsecrets {secrets}\n",
            "utf-8",
        )
        mounted = subprocess.run(
            [mount_davfs, f"{team.url}/{share}/", str(mnt), "-o", f"conf={conf},rw"],
            capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
            check=False,
        )
        assert mounted.returncode == 0, f"mount.davfs: {mounted.stdout}{mounted.stderr}"
        daemons = davfs_daemons(mnt)
        try:
            assert daemons, f"no mount.davfs process serves {mnt}"
            yield mnt
        finally:
            clean = unmount(mnt, daemons)
        assert clean, f"davfs2 did not unmount {mnt} within {TIMEOUT} s"
    finally:
        shutil.rmtree(public, ignore_errors=True)


# davfs2 keeps files it could not upload in this local folder at the root of every mount;
# it is never sent to the server.
DAVFS_LOCAL = "lost+found"


def test_davfs2_as_alice_sees_exactly_her_jail_and_writes_into_it(
    team: Team, tmp_path: Path
) -> None:
    before = bucket_state(team, team.photos)
    name, data = "from-davfs.txt", b"written by alice through davfs2\n" * 100
    with davfs_mount(team, "photos", ALICE, ALICE_PASSWORD, tmp_path) as mnt:
        seen = sorted(n for n in os.listdir(mnt) if n != DAVFS_LOCAL)
        assert seen == top_names(before, "alice/")
        assert "own.jpg" in seen and "bob" not in seen
        assert (mnt / "own.jpg").read_bytes() == OWN
        assert not (mnt / "bob").exists()
        (mnt / name).write_bytes(data)
        assert name in os.listdir(mnt)
    after = bucket_state(team, team.photos)
    assert set(after) - set(before) == {f"alice/{name}"}
    assert {k: v for k, v in after.items() if k in before} == before
    assert read_object(team, team.photos, f"alice/{name}") == data
    assert read_object(team, team.photos, "bob/secret.jpg") == SECRET


def test_davfs2_as_reader_reads_models_byte_exact_and_cannot_write(
    team: Team, tmp_path: Path
) -> None:
    before = bucket_state(team, team.models)
    with davfs_mount(team, "models", READER, READER_PASSWORD, tmp_path) as mnt:
        assert sorted(n for n in os.listdir(mnt) if n != DAVFS_LOCAL) == top_names(
            before, "models/"
        )
        assert (mnt / "weights.bin").read_bytes() == WEIGHTS
        for attempt in (
            lambda: (mnt / "from-reader.bin").write_bytes(b"must not arrive"),
            lambda: (mnt / "config.json").write_bytes(b"must not replace"),
            lambda: (mnt / "weights.bin").unlink(),
            lambda: (mnt / "folder-by-reader").mkdir(),
        ):
            # The gateway answers LOCK, DELETE and MKCOL with 403; davfs2 reports it to
            # the program (as EINVAL) before any byte is written.
            with pytest.raises(OSError):
                attempt()
    assert bucket_state(team, team.models) == before
    assert read_object(team, team.models, "models/config.json") == MODELS["models/config.json"]
    assert read_object(team, team.models, "models/weights.bin") == WEIGHTS
