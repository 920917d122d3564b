"""One malloc arena for the whole process, so memory freed on one thread is reused by all.

glibc gives every new thread an arena of its own at its first allocation (up to eight per
core), and an arena keeps the memory it once held. The disk tier's reader threads allocate
every block they read, and the event loop frees it: with 32 readers of the disk cache,
the threads' arenas kept 80-120 MiB that no buffer held, and the process went past
``--memory-target``. With one arena every thread draws on the same free memory. The
threads allocate with the GIL held (a file read lets it go only for the system call), so
they seldom wait for the arena's lock.

It must be set before the first thread starts: arenas made before stay in use. An arena
limit already given (``MALLOC_ARENA_MAX``, or ``glibc.malloc.arena_max`` in
``GLIBC_TUNABLES``) wins. Elsewhere than glibc on Linux (musl, macOS, Windows) nothing is
set.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def one_arena() -> bool:
    """Limit glibc to one malloc arena; call before the first thread starts. True if set."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    if "arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, 1))
