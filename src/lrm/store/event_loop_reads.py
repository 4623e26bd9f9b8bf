"""A few LRM DB connections for reads made on an asyncio event loop.

The report API builds small reports on its event loop (`lrm.api.routes`): one query, then a
millisecond of array work. Building them in threads cost twice the CPU: every round trip to
the database handed the GIL between the threads and the event loop, and the pool checkout
added a ping and a BEGIN/ROLLBACK pair. These connections are in autocommit (a report is one
statement) and are opened on first use; one that broke, or was left inside a transaction by a
cancelled request, is closed instead of reused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import pq

from lrm.domain.errors import DatabaseError
from lrm.store.db import libpq_url

_CONNECT_TIMEOUT_S = 5


class EventLoopReads:
    def __init__(self, url: str, *, size: int, application_name: str) -> None:
        self.url = libpq_url(url)
        self.application_name = application_name
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots: asyncio.Semaphore | None = None
        self._size = size

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """An idle connection (waits while `size` are in use); database errors are raised as
        DatabaseError."""
        if self._slots is None:  # made on the loop that uses it
            self._slots = asyncio.Semaphore(self._size)
        async with self._slots:
            connection: psycopg.AsyncConnection[Any] | None = None
            try:
                connection = self._idle.pop() if self._idle else await self._connect()
                yield connection
            except psycopg.Error as exc:
                first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
                raise DatabaseError(f"the LRM database is not available: {first}") from exc
            finally:
                if connection is not None:
                    if (connection.closed or connection.broken or connection.info
                            .transaction_status != pq.TransactionStatus.IDLE):
                        await connection.close()
                    else:
                        self._idle.append(connection)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        connection = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, application_name=self.application_name,
            connect_timeout=_CONNECT_TIMEOUT_S)
        # As on every LRM DB connection (lrm.store.db): plans for the parameters given.
        await connection.execute("SET plan_cache_mode = force_custom_plan")
        return connection

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()
