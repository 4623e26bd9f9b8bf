"""`COPY … TO STDOUT` into one buffer, with the least Python work per message.

PostgreSQL sends a COPY's output as one protocol message per row. psycopg's `Copy` iterator
runs a generator and its wait loop for each of them: 1.3 µs of CPU per row, holding the GIL, so
that four IDB reads of two million rows in all spent 2.7 s taking turns at the GIL (and kept the
job's other threads from it). Here libpq is driven directly (`psycopg.pq`): each message costs
one call, and the thread waits for more data in `poll`, without the GIL."""

from __future__ import annotations

import select
from typing import Any

import psycopg
from psycopg import errors, pq


def copy_out(connection: psycopg.Connection[Any], statement: bytes, into: bytearray) -> int:
    """Run `statement` (a `COPY … TO STDOUT`) on `connection`, append its whole output to
    `into` and return the number of rows. The connection must be idle, or idle inside a
    transaction. A server error is raised as psycopg raises it (`psycopg.errors.…`, with its
    SQLSTATE); a lost connection as `psycopg.OperationalError`."""
    pgconn = connection.pgconn
    socket = pgconn.socket
    pgconn.send_query(statement)
    # psycopg's connections are non-blocking: a long statement is only partly sent yet.
    while pgconn.flush():
        if _wait(socket, write=True) & select.POLLIN:
            pgconn.consume_input()
    _expect(pgconn, socket, pq.ExecStatus.COPY_OUT)
    get = pgconn.get_copy_data
    while True:
        size, data = get(1)  # 1: do not block (a blocking libpq call would hold the GIL)
        if size > 0:
            into += data
        elif size == 0:
            _wait(socket)
            pgconn.consume_input()
        elif size == -1:  # the end of the COPY: its command status follows
            break
        else:
            raise psycopg.OperationalError(_message(pgconn))
    rows = _expect(pgconn, socket, pq.ExecStatus.COMMAND_OK).command_tuples
    _drain(pgconn, socket)
    return int(rows or 0)


def _wait(socket: int, *, write: bool = False) -> int:
    """Wait until the socket can be read (or written, with `write`); the events that came."""
    poller = select.poll()
    poller.register(socket, select.POLLIN | (select.POLLOUT if write else 0))
    while True:
        events = poller.poll()
        if events:
            return events[0][1]


def _expect(pgconn: pq.abc.PGconn, socket: int, status: pq.ExecStatus) -> pq.abc.PGresult:
    """The next result, which must have `status`; otherwise its error is raised, once every
    result is read (the connection is then ready for the next statement)."""
    result = _next_result(pgconn, socket)
    if result is None or result.status != status:
        error: psycopg.Error = (
            errors.error_from_result(result) if result is not None
            and result.status == pq.ExecStatus.FATAL_ERROR
            else psycopg.OperationalError(_message(pgconn)))
        _drain(pgconn, socket)
        raise error
    return result


def _next_result(pgconn: pq.abc.PGconn, socket: int) -> pq.abc.PGresult | None:
    while pgconn.is_busy():
        _wait(socket)
        pgconn.consume_input()
    return pgconn.get_result()


def _drain(pgconn: pq.abc.PGconn, socket: int) -> None:
    """Read results until libpq has none left."""
    while _next_result(pgconn, socket) is not None:
        pass


def _message(pgconn: pq.abc.PGconn) -> str:
    raw = pgconn.error_message or b"the COPY failed"
    return raw.decode(errors="replace").strip()
