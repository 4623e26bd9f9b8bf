"""A loopback TCP proxy the fault tests put between an instance and PostgreSQL."""

from __future__ import annotations

import contextlib
import select
import socket
import threading

from lrm.store.embedded import free_tcp_port


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_port`. `cut()` partitions: new connections are
    refused and established ones stop moving data (a black hole: nothing is closed, so the
    client's calls hang as they would behind a dead switch). `heal()` undoes it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_tcp_port()
        self._listener: socket.socket | None = None
        self._blackhole = threading.Event()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        self._open_listener()
        return self

    def _open_listener(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while not self._stop.is_set():
            try:
                readable, _, _ = select.select([a, b], [], [], 0.1)
            except (OSError, ValueError):  # closed by stop()
                return
            if self._blackhole.is_set():
                continue
            for source in readable:
                try:
                    data = source.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    for s in (a, b):
                        with contextlib.suppress(OSError):
                            s.close()
                    return
                with contextlib.suppress(OSError):
                    peers[source].sendall(data)

    def _close_listener(self) -> None:
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None

    def cut(self) -> None:
        self._blackhole.set()
        self._close_listener()

    def heal(self) -> None:
        self._blackhole.clear()
        if self._listener is None:
            self._open_listener()

    def stop(self) -> None:
        self._stop.set()
        self._close_listener()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.close()
