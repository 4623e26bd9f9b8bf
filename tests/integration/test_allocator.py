"""lrm.allocator on the real C library: each case runs in a fresh interpreter, because glibc
reads MALLOC_ARENA_MAX once and an arena, once made, stays for the life of the process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lrm.allocator import limit_malloc_arenas

# Eight threads allocate at once (64 kB: under the mmap threshold, over pymalloc's sizes),
# then malloc_info reports one <heap> per arena in use.
_COUNT_ARENAS = r"""
import ctypes, ctypes.util, sys, tempfile, threading
from lrm.allocator import limit_malloc_arenas
if sys.argv[1] == "limit":
    print(limit_malloc_arenas(2))
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = libc.fopen.restype = ctypes.c_void_p
start = threading.Barrier(8)
def allocate():
    start.wait()
    for _ in range(50):
        libc.free(ctypes.c_void_p(libc.malloc(65536)))
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
with tempfile.NamedTemporaryFile(suffix=".xml") as report:
    stream = ctypes.c_void_p(libc.fopen(report.name.encode(), b"w"))
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(open(report.name).read().count("<heap nr="))
"""

glibc_only = pytest.mark.skipif(
    not hasattr(os, "confstr") or "CS_GNU_LIBC_VERSION" not in os.confstr_names,
    reason="malloc arenas are glibc's")


def _arenas(mode: str, **environ: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | environ
    done = subprocess.run([sys.executable, "-c", _COUNT_ARENAS, mode], env=env, check=True,
                          capture_output=True, text=True, timeout=60)
    return done.stdout.split()


@glibc_only
def test_threads_share_two_arenas_once_limited() -> None:
    assert int(_arenas("default")[-1]) > 2  # the baseline this guards against
    limited = _arenas("limit")
    assert limited[0] == "True" and int(limited[1]) <= 2


@glibc_only
def test_an_operators_malloc_arena_max_is_left_alone() -> None:
    chosen = _arenas("limit", MALLOC_ARENA_MAX="3")
    assert chosen[0] == "False" and int(chosen[1]) == 3


def test_at_least_one_arena() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        limit_malloc_arenas(0)
