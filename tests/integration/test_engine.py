"""The LRM DB engine's connections over a real server."""

from __future__ import annotations

import gc
import warnings

from lrm.store.db import create_engine


def test_a_connection_returned_after_dispose_is_closed(lrm_db_url: str) -> None:
    """A connection still checked out when the engine is disposed (work abandoned in its
    thread) is closed when it comes back, not left open for the garbage collector."""
    engine = create_engine(lrm_db_url)
    late = engine.connect()
    late.exec_driver_sql("SELECT 1")
    raw = late.connection.dbapi_connection
    engine.dispose()
    with engine.connect() as fresh:  # the engine works on after a dispose
        assert fresh.exec_driver_sql("SELECT 1").scalar_one() == 1
        kept = fresh.connection.dbapi_connection
    late.close()
    assert raw is not None and raw.closed
    with engine.connect() as again:  # a connection of the new pool is kept and used again
        assert again.connection.dbapi_connection is kept
    assert kept is not None and not kept.closed
    engine.dispose()
    del late, raw, engine
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
