"""One malloc arena: threads that allocate draw on the memory every thread frees, so what
the disk tier's reader threads once held is not kept aside, past --memory-target."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from gateway.ops.malloc import one_arena

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

# Four threads alive at once, each allocating; then the number of arenas malloc_info lists.
ARENAS = """
import ctypes, sys, tempfile, threading
from gateway.ops.malloc import one_arena
if sys.argv[1] == "one":
    assert one_arena()
together = threading.Barrier(4)
def work():
    block = bytes(1 << 20)
    together.wait()
    del block
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile() as out:
    stream = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(open(out.name).read().count("<heap nr="))
"""


def arenas(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}
    done = subprocess.run([sys.executable, "-c", ARENAS, mode], capture_output=True, text=True,
                          env=env, timeout=60, check=True)
    return int(done.stdout)


def test_threads_share_one_arena() -> None:
    assert arenas("one") == 1
    assert arenas("default") > 1  # glibc's own way: an arena for each new thread


def test_an_arena_limit_in_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert one_arena() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=4")
    assert one_arena() is False


def test_nothing_is_set_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(sys, "platform", "win32")  # where CDLL(None) itself fails
    assert one_arena() is False
