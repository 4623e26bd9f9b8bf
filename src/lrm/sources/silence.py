"""Abandoning a database read that has gone silent.

A server that stops answering in the middle of a read (a switch that drops the traffic, a
frozen host) leaves the client blocked in `recv` for as long as TCP keeps the connection, which
with the usual keepalive settings is hours, or for ever behind a proxy that still acknowledges
the packets. The nightly job would hang with the job lock held. `SilenceGuard` watches the time
since the reader last heard from the server and, past the limit, shuts the connection's socket
down: the blocked call returns with an error at once and the read fails as a source error."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from types import TracebackType


class SilenceGuard:
    """Shut down socket `fileno` (owned by the database driver, which keeps it open) when the
    reader has heard nothing for `limit_s` seconds. The reader appends what it receives to
    `buffer()` (the guard watches its length: a call per chunk, and a binary COPY chunk is one
    row, cost 0.13 s of CPU per 2 M rows) and calls `heard()` when it starts a new request.
    Used as a context manager around the connection's use; `tripped` tells afterwards whether
    it stepped in."""

    def __init__(self, fileno: int, limit_s: float) -> None:
        self.fileno = fileno
        self.limit_s = limit_s
        self.tripped = False
        self._requests = 0
        self._buffer = bytearray()
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="lrm-silence-guard",
                                         daemon=True)

    def heard(self) -> None:
        """A new request is under way: its silence counts from now."""
        self._requests += 1

    def buffer(self) -> bytearray:
        """A new, empty buffer for the answer to a new request."""
        self._buffer = bytearray()
        self.heard()
        return self._buffer

    def __enter__(self) -> SilenceGuard:
        self._watcher.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._done.set()
        self._watcher.join()

    def _progress(self) -> tuple[int, int]:
        return self._requests, len(self._buffer)

    def _watch(self) -> None:
        poll_s = min(self.limit_s / 4, 1.0)
        seen, since = self._progress(), time.monotonic()
        while not self._done.wait(poll_s):
            now = self._progress()
            if now != seen:
                seen, since = now, time.monotonic()
            elif time.monotonic() - since > self.limit_s:
                self.tripped = True
                # A duplicate of the descriptor: shutdown() acts on the connection itself, and
                # closing the duplicate leaves the driver's descriptor for the driver to close.
                with contextlib.suppress(OSError), socket.socket(fileno=os.dup(self.fileno)) as s:
                    s.shutdown(socket.SHUT_RDWR)
                return
