"""`copy_out` (libpq driven directly) gives the bytes psycopg's COPY iterator gives, counts the
rows, and reports a failing COPY with the server's message, leaving the connection usable."""

from __future__ import annotations

import psycopg
import pytest

from lrm.store.copy_out import copy_out

QUERY = ("COPY (SELECT g, g * 2, md5(g::text) FROM generate_series(1, 20000) g) "
         "TO STDOUT (FORMAT {})")


@pytest.mark.parametrize("kind", ["binary", "text"])
def test_the_output_is_psycopgs_and_the_rows_are_counted(lrm_db_url: str, kind: str) -> None:
    with psycopg.connect(lrm_db_url) as connection:
        expected = bytearray()
        with connection.cursor().copy(QUERY.format(kind)) as copy:
            for chunk in copy:
                expected += chunk
        connection.rollback()
        into = bytearray(b"kept:")
        assert copy_out(connection, QUERY.format(kind).encode(), into) == 20_000
        assert into == b"kept:" + expected


def test_a_failing_copy_raises_the_servers_error_and_the_connection_goes_on(
        lrm_db_url: str) -> None:
    with psycopg.connect(lrm_db_url, autocommit=True) as connection:
        with pytest.raises(psycopg.errors.UndefinedTable, match="no_such_table"):
            copy_out(connection, b"COPY (SELECT * FROM no_such_table) TO STDOUT", bytearray())
        # A failure in the middle of the rows (the division runs row by row).
        with pytest.raises(psycopg.errors.DivisionByZero, match="division by zero"):
            copy_out(connection, b"COPY (SELECT 1 / (5000 - g) FROM generate_series(1, 10000) g)"
                                 b" TO STDOUT", bytearray())
        assert connection.execute("SELECT 42").fetchone() == (42,)


def test_a_statement_larger_than_the_socket_buffers_is_sent_whole(lrm_db_url: str) -> None:
    """psycopg's connections are non-blocking: libpq sends a long statement in parts, which
    copy_out must flush (30 MB: a partner-copy lookup names every GUID it wants)."""
    literal = b"x" * 30_000_000
    with psycopg.connect(lrm_db_url, autocommit=True) as connection:
        into = bytearray()
        assert copy_out(connection, b"COPY (SELECT length('" + literal + b"')) TO STDOUT",
                        into) == 1
        assert into == b"30000000\n"
