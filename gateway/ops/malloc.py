"""One malloc arena for the whole process, so memory freed by one thread is reused by all.

glibc gives a thread that allocates while another holds the arena lock an arena of its
own, up to eight per core, and an arena keeps the memory it once held. The disk tier's
reader threads allocate every block they read and the event loop frees them: with 32
readers of the disk cache, the threads' arenas kept 80-120 MiB that no buffer held, and
the process went past ``--memory-target``. With one arena every thread draws on the same
free memory. The threads here hold the GIL for nearly all they do, so they seldom wait
for the arena's lock.

``MALLOC_ARENA_MAX`` set in the environment wins: glibc has read it already. Elsewhere
than glibc (musl, macOS) there is nothing to set.
"""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def one_arena() -> bool:
    """Limit glibc to one malloc arena; call before the first thread starts. True if set."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, 1))
