"""How the C allocator of an lrm process is set up.

glibc's malloc gives each thread that allocates while another holds the lock an arena of its
own, up to eight per core, and memory freed into an arena stays with the process until that
arena's top is free. The nightly job allocates its large arrays from several threads at once
(four IDB reads, the GVP requests, the writer, the counting on the main thread), so freed
blocks are spread over as many arenas and the process keeps them: at the benchmark's default
size (`bench/job_throughput.py`, 1 M sessions) the job peaked at 1.39-1.64 GB of RSS with the
default arenas and at 1.18-1.31 GB with two, in the same time. Python's small objects do not
use malloc's arenas (pymalloc), so the limit only concerns the large buffers.
"""

from __future__ import annotations

import ctypes
import os

#: mallopt's parameter number for the arena limit (glibc's malloc.h).
_M_ARENA_MAX = -8

#: Arenas per process: one for the main thread and one shared by the background threads.
DEFAULT_MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = DEFAULT_MALLOC_ARENAS) -> bool:
    """Limit glibc's malloc to `arenas` arenas for the threads that get one from now on.
    Returns whether the limit was set: not on other C libraries, and not when the operator
    chose a limit with the `MALLOC_ARENA_MAX` environment variable (glibc applied it already
    and it is left as it is)."""
    if arenas < 1:
        raise ValueError(f"arenas must be at least 1 (got {arenas})")
    if os.environ.get("MALLOC_ARENA_MAX") or not _is_glibc():
        return False
    libc = ctypes.CDLL(None)  # the process's own symbols: glibc's (no ldconfig lookup)
    return bool(libc.mallopt(ctypes.c_int(_M_ARENA_MAX), ctypes.c_int(arenas)))


def _is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError):  # the name is unknown outside glibc
        return False
