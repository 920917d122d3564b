"""End to end: a real ``bucketdav serve`` over a local folder with key filters and a
quota, driven with curl and rclone: hidden keys answer 404 and are never listed, a hidden
name cannot be created, and the quota properties show the bytes the folder holds."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.gatewayproc import running_gateway


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-s", *args], capture_output=True, text=True, timeout=60,
                          check=False)


def status(*args: str) -> str:
    return curl("-o", "/dev/null", "-w", "%{http_code}", *args).stdout


QUOTA_BODY = ('<D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/>'
              "<D:quota-used-bytes/></D:prop></D:propfind>")


def test_filters_and_quota_on_a_real_process(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    (root / "private").mkdir()
    (root / "pub.txt").write_bytes(b"p" * 1000)
    (root / "a.secret").write_bytes(b"s" * 500)
    (root / "docs" / "readme.txt").write_bytes(b"r" * 24)
    (root / "private" / "plan.txt").write_bytes(b"x" * 100)
    with running_gateway(str(root), "--exclude", "**/*.secret,private", "--quota", "1M",
                         "--allow-delete") as gateway:
        url = gateway.url
        assert status(url + "/a.secret") == "404"
        assert status("-I", url + "/private/plan.txt") == "404"
        assert status("-X", "PROPFIND", "-H", "Depth: 0", url + "/private/") == "404"
        listing = curl("-X", "PROPFIND", "-H", "Depth: 1", url + "/").stdout
        assert "pub.txt" in listing and "docs" in listing
        assert "secret" not in listing and "private" not in listing
        json_listing = curl(url + "/?format=json").stdout
        assert "pub.txt" in json_listing and "secret" not in json_listing

        put = curl("-T", "-", "-w", "\n%{http_code}", url + "/new.secret")
        assert put.stdout.endswith("403") and "exclude '**/*.secret'" in put.stdout
        assert not (root / "new.secret").exists()

        # The quota: every byte under the folder, hidden keys included (they take room).
        deadline = time.monotonic() + 20
        while True:
            answer = curl("-X", "PROPFIND", "-H", "Depth: 0", "-H",
                          "Content-Type: application/xml", "--data", QUOTA_BODY,
                          url + "/").stdout
            if "quota-used-bytes>" in answer or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "<D:quota-used-bytes>1624</D:quota-used-bytes>" in answer
        assert f"<D:quota-available-bytes>{1024 * 1024 - 1624}<" in answer

        rclone = shutil.which("rclone")
        assert rclone is not None
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        about = subprocess.run(
            [rclone, "--config", "/dev/null", "about", "--json",
             f":webdav,url='{url}/',vendor=other:"],
            capture_output=True, text=True, timeout=60, env=env, check=False,
        )
        assert about.returncode == 0, about.stderr
        assert '"used": 1624' in about.stdout and f'"free": {1024 * 1024 - 1624}' in \
            about.stdout

        # A write through the gateway is counted at once; one past the quota is 507.
        more = tmp_path / "more.txt"
        more.write_bytes(b"m" * 76)
        assert status("-T", str(more), url + "/more.txt") == "201"
        answer = curl("-X", "PROPFIND", "-H", "Depth: 0", "--data", QUOTA_BODY, url + "/").stdout
        assert "<D:quota-used-bytes>1700</D:quota-used-bytes>" in answer
        big = tmp_path / "big.bin"
        big.write_bytes(b"b" * (1024 * 1024))
        refused = curl("-T", str(big), "-w", "\n%{http_code}", url + "/big.bin").stdout
        assert refused.endswith("507") and "quota" in refused
        assert not (root / "big.bin").exists()
