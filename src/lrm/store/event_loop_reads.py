"""A few LRM DB connections for reads made on an asyncio event loop.

The report API builds small reports on its event loop (`lrm.api.routes`): one query, then a
millisecond of array work. Building them in threads cost twice the CPU: every round trip to
the database handed the GIL between the threads and the event loop, and the pool checkout
added a ping and a BEGIN/ROLLBACK pair. These connections are in autocommit (a report is one
statement) and are opened on first use. One that broke, or was left inside a transaction by a
cancelled request, is closed instead of reused; a read that finds a kept connection dead (the
server restarted since) is tried once more on a new one, so a restart costs no request an
error."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import pq

from lrm.domain.errors import DatabaseError
from lrm.store.db import libpq_url

_CONNECT_TIMEOUT_S = 5
T = TypeVar("T")
Read = Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]


class EventLoopReads:
    def __init__(self, url: str, *, size: int, application_name: str) -> None:
        self.url = libpq_url(url)
        self.application_name = application_name
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots: asyncio.Semaphore | None = None
        self._size = size
        # Bumped by close(): a connection taken before is closed when given back, not kept.
        self._generation = 0

    async def read(self, read: Read[T]) -> T:
        """`read(connection)` on an idle connection (waits while `size` are in use); database
        errors are raised as DatabaseError."""
        if self._slots is None:  # made on the loop that uses it
            self._slots = asyncio.Semaphore(self._size)
        async with self._slots:
            while True:
                kept = bool(self._idle)
                generation = self._generation
                connection = self._idle.pop() if kept else await self._open()
                try:
                    result = await read(connection)
                except psycopg.OperationalError as exc:
                    await _close(connection)
                    if kept and connection.broken:
                        continue  # died while kept: once more on a new connection
                    raise DatabaseError(_unavailable(exc)) from exc
                except psycopg.Error as exc:
                    await self._give_back(connection, generation)
                    raise DatabaseError(_unavailable(exc)) from exc
                except BaseException:
                    await self._give_back(connection, generation)
                    raise
                await self._give_back(connection, generation)
                return result

    async def open_idle(self) -> None:
        """Open the connections not open yet, so that the first reads wait for none (a
        just-started report API); database errors are raised as DatabaseError."""
        # One at a time (~5 ms each): each is kept as soon as it is open, so a cancelled
        # warm-up leaves none behind unclosed.
        generation = self._generation
        for _ in range(self._size - len(self._idle)):
            await self._give_back(await self._open(), generation)

    async def _open(self) -> psycopg.AsyncConnection[Any]:
        try:
            connection = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, application_name=self.application_name,
                connect_timeout=_CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            raise DatabaseError(_unavailable(exc)) from exc
        try:
            # As on every LRM DB connection (lrm.store.db): plans for the parameters given.
            await connection.execute("SET plan_cache_mode = force_custom_plan")
        except BaseException as exc:
            await _close(connection)
            if isinstance(exc, psycopg.Error):
                raise DatabaseError(_unavailable(exc)) from exc
            raise
        return connection

    async def _give_back(self, connection: psycopg.AsyncConnection[Any],
                         generation: int) -> None:
        if (generation != self._generation or connection.closed or connection.broken
                or connection.info.transaction_status != pq.TransactionStatus.IDLE
                or len(self._idle) >= self._size):
            await _close(connection)
        else:
            self._idle.append(connection)

    async def close(self) -> None:
        """Close the kept connections; those in use are closed when their reads end."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for connection in idle:
            await _close(connection)


async def _close(connection: psycopg.AsyncConnection[Any]) -> None:
    with contextlib.suppress(psycopg.Error):
        await connection.close()


def _unavailable(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
    return f"the LRM database is not available: {first}"
