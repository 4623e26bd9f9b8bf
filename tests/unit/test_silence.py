"""SilenceGuard on a local socket pair: it shuts the socket down after `limit_s` without
progress, and never while data keeps arriving."""

from __future__ import annotations

import socket
import time

from lrm.sources.silence import SilenceGuard


def test_shuts_a_silent_socket_down_after_the_limit() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        started = time.monotonic()
        with SilenceGuard(ours.fileno(), 0.4) as guard:
            assert ours.recv(1) == b""  # blocked until the guard shut the socket down
        assert guard.tripped
        assert 0.4 <= time.monotonic() - started < 2.0


def test_growing_answers_and_new_requests_keep_it_quiet() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs, SilenceGuard(ours.fileno(), 1.0) as guard:
        buffer = guard.buffer()
        for _ in range(15):  # 1.5 s of steady progress, longer than the limit
            time.sleep(0.1)
            buffer += b"row"
        for _ in range(15):
            time.sleep(0.1)
            guard.heard()
        theirs.sendall(b"!")
        assert ours.recv(1) == b"!"
    assert not guard.tripped
