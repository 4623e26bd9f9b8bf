"""An HTTP listener that can be opened and closed at run time (the report port follows the
instance's mode: open while primary, closed — connection refused — while backup)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the instance owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Listener:
    def __init__(self, app: Any, host: str, port: int, *, name: str) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def is_open(self) -> bool:
        return self._server is not None and self._server.started and not self._server.should_exit

    async def open(self, timeout_s: float = 10.0) -> None:
        """Start listening; returns once the socket accepts connections."""
        if self._task is not None and not self._task.done():
            return
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_config=None,
                                access_log=False, lifespan="on", timeout_graceful_shutdown=1,
                                timeout_keep_alive=2)
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(), name=f"listener-{self.name}")
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self._server.started:
            if self._task.done():
                error = self._task.exception()
                raise OSError(f"cannot listen on {self.host}:{self.port} ({self.name}): "
                              f"{error or 'server exited'}")
            if asyncio.get_running_loop().time() > deadline:
                # Given up: the port must not open later, on an instance that goes on as if
                # it had not.
                self._server.should_exit = True
                self._task.cancel()
                raise OSError(f"{self.name} listener did not start within {timeout_s}s")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        """Stop accepting connections (the socket is closed: connections are refused)."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
        self._server = None
        self._task = None
