"""Concurrent creators of one new name: exactly one wins (SEMANTICS, "Concurrent creators").

Real clients against a real ``bucketdav serve`` in default mode, over moto, over s3rver and
over a local folder, 20 rounds of each race:

* two PUTs of the same new name, multipart-sized (three parts of 5 MiB) and single-part.
  Both send ``Expect: 100-continue`` and hold their bodies until BOTH have been told to go
  on, so both have passed every check (the name was free for each) before either body is
  sent: the race is decided at commit, where it matters;
* ``COPY A -> X`` and ``COPY B -> X`` to the same new X, sent at once (with ``Overwrite: F``,
  so a copy that finds X already there is 412 as well: the answer does not depend on how
  far the other copy had got).

Each round: exactly one 201 and one 412, the object holds the winner's bytes, and on the
stores that can list them no upload or temporary file is left behind.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import aiohttp
import pytest

from tests.gatewayproc import running_gateway
from tests.servers import S3RVER_PROFILE, client, create_bucket

MiB = 1024 * 1024
ROUNDS = 20
MULTIPART = 11 * MiB  # three parts of --write-part-size 5 (moto reads whole objects: small)
SINGLE = 300 * 1024
TIMEOUT = 120.0


@dataclass
class Served:
    url: str
    read: Callable[[str], bytes]  # the object's bytes, straight from the store
    leftovers: Callable[[], list[str]]  # open uploads or temporary files, where visible


@pytest.fixture(scope="module", params=["moto", "s3rver", "local"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    kind: str = request.param
    if kind == "local":
        root = tmp_path_factory.mktemp("one-creator")
        with running_gateway(str(root), "--write-part-size", "5") as process:
            side = root / ".bucketdav"
            yield Served(
                process.url,
                lambda name: (root / name).read_bytes(),
                lambda: sorted(p.name for p in side.iterdir()) if side.is_dir() else [],
            )
        return
    endpoint: str = request.getfixturevalue("moto_server" if kind == "moto" else "s3rver")
    profile = None if kind == "moto" else S3RVER_PROFILE
    bucket = create_bucket(endpoint, profile)
    s3 = client(endpoint, profile)
    extra = () if profile is None else ("--profile", profile)
    with running_gateway(f"s3://{bucket}", "--endpoint-url", endpoint, "--force-path-style",
                         "--write-part-size", "5", *extra) as process:

        def uploads() -> list[str]:
            if kind == "s3rver":  # s3rver cannot list multipart uploads
                return []
            found = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
            return [u["Key"] for u in found]

        yield Served(
            process.url,
            lambda name: s3.get_object(Bucket=bucket, Key=name)["Body"].read(),
            uploads,
        )


def body(size: int, seed: str) -> bytes:
    block = hashlib.sha256(seed.encode()).digest() * 32
    return (block * (size // len(block) + 1))[:size]


async def read_status(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1])


async def put_racing(url: str, name: str, data: bytes, go: asyncio.Barrier) -> int:
    """PUT with ``Expect: 100-continue``; the body waits until every racer got its 100."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"PUT /{name} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(data)}\r\n"
                     "Expect: 100-continue\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status = await read_status(reader)
        if status != 100:
            await go.abort()
            return status
        await go.wait()
        writer.write(data)
        await writer.drain()
        return await read_status(reader)
    finally:
        writer.close()


async def put_round(url: str, name: str, bodies: list[bytes]) -> list[int]:
    go = asyncio.Barrier(len(bodies))
    racers = [put_racing(url, name, data, go) for data in bodies]
    return list(await asyncio.wait_for(asyncio.gather(*racers), TIMEOUT))


async def copy_round(session: aiohttp.ClientSession, url: str, name: str, sources: list[str]
                     ) -> list[int]:
    async def copy(source: str) -> int:
        headers = {"Destination": f"{url}/{name}", "Overwrite": "F"}
        async with session.request("COPY", f"{url}/{source}", headers=headers) as resp:
            return resp.status

    return list(await asyncio.wait_for(asyncio.gather(*map(copy, sources)), TIMEOUT))


def check_round(served: Served, name: str, statuses: list[int], bodies: list[bytes]) -> None:
    assert sorted(statuses) == [201, 412], f"{name}: {statuses}"
    winner = bodies[statuses.index(201)]
    assert served.read(name) == winner, f"{name}: the object is not the winner's"


@pytest.mark.parametrize("size", [MULTIPART, SINGLE], ids=["multipart", "single-part"])
def test_two_puts_of_one_new_name_give_one_201_and_one_412(served: Served, size: int) -> None:
    async def rounds() -> None:
        for i in range(ROUNDS):
            name = f"put-{size}-{i}.bin"
            bodies = [body(size, f"{name}-a"), body(size, f"{name}-b")]
            check_round(served, name, await put_round(served.url, name, bodies), bodies)

    asyncio.run(rounds())
    assert served.leftovers() == []


def test_two_copies_to_one_new_name_give_one_201_and_one_412(served: Served) -> None:
    async def rounds() -> None:
        async with aiohttp.ClientSession() as session:
            bodies = [body(SINGLE, "copy-source-a"), body(SINGLE, "copy-source-b")]
            sources = ["copy-source-a.bin", "copy-source-b.bin"]
            for source, data in zip(sources, bodies, strict=True):
                async with session.put(f"{served.url}/{source}", data=data) as resp:
                    assert resp.status == 201
            for i in range(ROUNDS):
                name = f"copy-{i}.bin"
                statuses = await copy_round(session, served.url, name, sources)
                check_round(served, name, statuses, bodies)

    asyncio.run(rounds())
    assert served.leftovers() == []

