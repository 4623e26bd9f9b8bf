"""`COPY … TO STDOUT` into one buffer, with the least Python work per message.

PostgreSQL sends a COPY's output as one protocol message per row. psycopg's `Copy` iterator
runs a generator and its wait loop for each of them: 1.3 µs of CPU per row, holding the GIL, so
that four IDB reads of two million rows in all spent 2.7 s taking turns at the GIL (and kept the
job's other threads from it). Here libpq is driven directly (`psycopg.pq`): each message costs
one call, and the thread waits for more data in `select`, without the GIL."""

from __future__ import annotations

import select
from typing import Any

import psycopg
from psycopg import pq


def copy_out(connection: psycopg.Connection[Any], statement: bytes, into: bytearray) -> int:
    """Run `statement` (a `COPY … TO STDOUT`) on `connection`, append its whole output to
    `into` and return the number of rows. The connection must be idle, or idle inside a
    transaction; errors are raised as `psycopg.OperationalError` with the server's message."""
    pgconn = connection.pgconn
    socket = pgconn.socket
    pgconn.send_query(statement)
    _expect(pgconn, socket, pq.ExecStatus.COPY_OUT)
    get = pgconn.get_copy_data
    while True:
        size, data = get(1)  # 1: do not block (a blocking libpq call would hold the GIL)
        if size > 0:
            into += data
        elif size == 0:
            _wait_readable(socket)
            pgconn.consume_input()
        elif size == -1:  # the end of the COPY: its command status follows
            break
        else:
            raise psycopg.OperationalError(_message(None, pgconn))
    rows = _expect(pgconn, socket, pq.ExecStatus.COMMAND_OK).command_tuples
    _drain(pgconn, socket)
    return int(rows or 0)


def _wait_readable(socket: int) -> None:
    select.select([socket], [], [])


def _expect(pgconn: pq.abc.PGconn, socket: int, status: pq.ExecStatus) -> pq.abc.PGresult:
    """The next result, which must have `status` (else the server's message is raised, once
    every result is read)."""
    result = _next_result(pgconn, socket)
    if result is None or result.status != status:
        message = _message(result, pgconn)
        _drain(pgconn, socket)
        raise psycopg.OperationalError(message)
    return result


def _next_result(pgconn: pq.abc.PGconn, socket: int) -> pq.abc.PGresult | None:
    while pgconn.is_busy():
        _wait_readable(socket)
        pgconn.consume_input()
    return pgconn.get_result()


def _drain(pgconn: pq.abc.PGconn, socket: int) -> None:
    """Read results until libpq has none left (the connection is then ready again)."""
    while _next_result(pgconn, socket) is not None:
        pass


def _message(result: pq.abc.PGresult | None, pgconn: pq.abc.PGconn) -> str:
    raw = result.error_message if result is not None else b""
    raw = raw or pgconn.error_message or b"the COPY failed"
    return raw.decode(errors="replace").strip()
