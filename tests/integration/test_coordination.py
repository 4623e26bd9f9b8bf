"""The lease, the job lock and the fences, on a real PostgreSQL (database clock)."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable

import psycopg
import pytest
import sqlalchemy as sa

from lrm.domain.errors import FencedError
from lrm.store import coordination as co
from lrm.store.db import create_engine, libpq_url


def poll(condition: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met before the deadline")


def test_first_acquire_gets_epoch_one_and_renew_keeps_it(lrm_engine: sa.Engine) -> None:
    """The first holder gets epoch 1; renewing does not change the epoch."""
    with lrm_engine.begin() as c:
        first = co.acquire_or_renew_lease(c, "a", 10)
    with lrm_engine.begin() as c:
        again = co.acquire_or_renew_lease(c, "a", 10)
    assert first is not None and again is not None
    assert (first.holder, first.epoch) == ("a", 1)
    assert (again.holder, again.epoch) == ("a", 1)
    assert 9 < again.expires_in_s <= 10


def test_peer_cannot_take_a_live_lease(lrm_engine: sa.Engine) -> None:
    """While the lease is live, the other instance gets nothing."""
    with lrm_engine.begin() as c:
        co.acquire_or_renew_lease(c, "a", 10)
        assert co.acquire_or_renew_lease(c, "b", 10) is None


def test_expired_lease_is_taken_with_a_higher_epoch(lrm_engine: sa.Engine) -> None:
    """After expiry the peer takes the lease and the epoch rises; the old holder is fenced."""
    with lrm_engine.begin() as c:
        co.acquire_or_renew_lease(c, "a", 0.3)

    def taken() -> bool:
        with lrm_engine.begin() as c:
            return co.acquire_or_renew_lease(c, "b", 10) is not None
    poll(taken)
    with lrm_engine.begin() as c:
        state = co.read_lease(c)
        assert state is not None and (state.holder, state.epoch) == ("b", 2)
    with lrm_engine.begin() as c, pytest.raises(FencedError, match="held by b with epoch 2"):
        co.fence_lease(c, "a", 1, silence_s=10)
    with lrm_engine.begin() as c:
        co.fence_lease(c, "b", 2, silence_s=10)


def test_reacquiring_own_expired_lease_bumps_the_epoch(lrm_engine: sa.Engine) -> None:
    """A primary that let its lease expire never gets its old epoch back."""
    with lrm_engine.begin() as c:
        co.acquire_or_renew_lease(c, "a", 0.2)
    time.sleep(0.3)  # the point of the test is the lapse itself
    with lrm_engine.begin() as c:
        state = co.acquire_or_renew_lease(c, "a", 10)
    assert state is not None and state.epoch == 2


def test_release_hands_over_at_once_and_releaser_waits(lrm_engine: sa.Engine) -> None:
    """A released lease is free for the peer immediately; the releaser does not compete for one
    TTL."""
    with lrm_engine.begin() as c:
        co.acquire_or_renew_lease(c, "a", 10)
        assert co.release_lease(c, "a", 1)
        assert co.acquire_or_renew_lease(c, "a", 10) is None
        state = co.acquire_or_renew_lease(c, "b", 10)
        assert state is not None and state.epoch == 2


def test_job_lock_is_exclusive_and_recovered_after_heartbeat_lapses(
        lrm_engine: sa.Engine) -> None:
    """A second starter is refused while the holder heartbeats; a dead holder's lock is taken."""
    with lrm_engine.begin() as c:
        assert co.acquire_job_lock(c, "a/1", 1, stale_s=0.5) is not None
        assert co.acquire_job_lock(c, "b/1", 2, stale_s=0.5) is None
        assert co.heartbeat_job_lock(c, "a/1", run_id=7)
        held = co.read_job_lock(c)
        assert held is not None and (held.holder, held.run_id) == ("a/1", 7)

    def taken() -> bool:
        with lrm_engine.begin() as c:
            return co.acquire_job_lock(c, "b/1", 2, stale_s=0.5) is not None
    poll(taken)
    with lrm_engine.begin() as c:
        assert not co.heartbeat_job_lock(c, "a/1")
        with pytest.raises(FencedError, match="holder: b/1"):
            co.fence_job_lock(c, "a/1", silence_s=10)


def test_released_job_lock_is_free(lrm_engine: sa.Engine) -> None:
    """Releasing the job lock lets the next run start at once."""
    with lrm_engine.begin() as c:
        co.acquire_job_lock(c, "a/1", 1, stale_s=60)
        co.release_job_lock(c, "a/1")
        assert co.acquire_job_lock(c, "b/1", 1, stale_s=60) is not None


def _lock_timeout_attempt(engine: sa.Engine, me: str) -> co.LeaseState | None:
    """One acquire that gives up after 0.2 s on a locked row (psycopg's LockNotAvailable)."""
    with co.coordination_transaction(engine, 10) as c:
        c.execute(sa.text("SET LOCAL lock_timeout = '200ms'"))
        return co.acquire_or_renew_lease(c, me, 10)


SILENCE_S = 2.0


def _orphan_and_takeover(lrm_engine: sa.Engine,
                         lock: Callable[[sa.Connection], None]) -> float:
    """Lock the lease row in a transaction whose client then falls silent (as if cut off before
    its COMMIT arrived), show the row is locked, and return how long after that the peer "b"
    takes over. The orphan's session must have been ended by the server (so its transaction
    never commits)."""
    with lrm_engine.begin() as c:
        co.acquire_or_renew_lease(c, "a", SILENCE_S)
    orphan = co.coordination_transaction(lrm_engine, SILENCE_S)
    connection = orphan.__enter__()
    pid = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    lock(connection)
    silent_since = time.monotonic()
    with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
        _lock_timeout_attempt(lrm_engine, "b")
    state = None
    while state is None and time.monotonic() - silent_since < SILENCE_S + 8:
        with contextlib.suppress(sa.exc.OperationalError):
            state = _lock_timeout_attempt(lrm_engine, "b")
    took = time.monotonic() - silent_since
    assert state is not None and (state.holder, state.epoch) == ("b", 2)
    poll(lambda: not _session_alive(lrm_engine, pid), 2.0)
    connection.invalidate()
    with contextlib.suppress(Exception):
        orphan.__exit__(None, None, None)
    return took


def _session_alive(engine: sa.Engine, pid: int) -> bool:
    with engine.connect() as c:
        return bool(c.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                              {"pid": pid}).scalar_one())


def test_a_renew_cut_off_before_its_commit_does_not_block_the_takeover(
        lrm_engine: sa.Engine) -> None:
    """The renew's row lock is released when the server ends the silent session (after the
    silence limit), not when TCP notices (never, behind a black-holing switch)."""
    took = _orphan_and_takeover(
        lrm_engine, lambda c: co.acquire_or_renew_lease(c, "a", SILENCE_S) and None)
    assert took < SILENCE_S + 3, took


def test_a_fence_cut_off_before_its_commit_does_not_block_the_takeover(
        lrm_engine: sa.Engine) -> None:
    """A writing transaction that took the fence and then lost its client gives the lease row
    up after the fence's silence limit."""
    took = _orphan_and_takeover(
        lrm_engine, lambda c: co.fence_lease(c, "a", 1, silence_s=SILENCE_S))
    assert took < SILENCE_S + 3, took


def test_a_fence_cut_off_in_the_middle_of_a_statement_does_not_block_the_takeover(
        lrm_engine: sa.Engine) -> None:
    """Cut off while sending its next statement (the server has the statement but not the
    Sync that ends it, as with a large INSERT cut halfway), the session is busy, not idle, for
    the server: transaction_timeout (PostgreSQL 17+) ends it all the same."""
    def fence_then_half_a_statement(connection: sa.Connection) -> None:
        co.fence_lease(connection, "a", 1, silence_s=SILENCE_S)
        raw = connection.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        raw.pgconn.enter_pipeline_mode()
        raw.pgconn.send_query_params(b"SELECT 1", None)
        raw.pgconn.flush()  # Parse/Bind/Execute sent, no Sync: then silence

    took = _orphan_and_takeover(lrm_engine, fence_then_half_a_statement)
    assert took < SILENCE_S + 3, took


def test_previous_holder_is_the_holder_replaced_not_a_stale_snapshot(
        lrm_engine: sa.Engine) -> None:
    """The peer's acquire waits on the row while the holder releases it: the holder it then
    replaces is nobody (a graceful hand-over leaves no sessions to end), not the instance it
    saw when its statement began."""
    with lrm_engine.begin() as c:
        co.acquire_or_renew_lease(c, "a", 10)
    releasing = lrm_engine.connect()
    transaction = releasing.begin()
    co.release_lease(releasing, "a", 1)
    result: list[co.LeaseState | None] = []

    def acquire() -> None:
        with co.coordination_transaction(lrm_engine, 10) as c:
            result.append(co.acquire_or_renew_lease(c, "b", 10))
    waiter = threading.Thread(target=acquire)
    waiter.start()
    poll(lambda: _waiting_on_a_lock(lrm_engine))
    transaction.commit()
    releasing.close()
    waiter.join(timeout=10)
    assert result and result[0] is not None
    assert (result[0].holder, result[0].previous_holder) == ("b", None)


def _waiting_on_a_lock(engine: sa.Engine) -> bool:
    with engine.connect() as c:
        return bool(c.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()")).scalar_one())


_DAILY_ROW = ("INSERT INTO usage_daily (level, subject_id, item_id, business_date, peak_value, "
              "run_id) VALUES ('tenant', 101, 1, '2026-11-24', {value}, 1)")


def test_a_new_primary_ends_the_sessions_its_predecessor_left_open(
        lrm_db_url: str, lrm_engine: sa.Engine) -> None:
    """The predecessor's `lrm serve` session, cut off halfway through writing a date's results
    (a row inserted, a COPY begun and never finished: a session the server sees as active, so
    no idle timeout ends it), blocks the same rows for anyone else; the new primary learns who
    held the lease before it, ends that session, and writes the date."""
    orphan = psycopg.connect(libpq_url(lrm_db_url),
                             application_name=co.serving_application_name("a"))
    bystander = psycopg.connect(libpq_url(lrm_db_url),
                                application_name=co.command_application_name("a"))
    copying = orphan.cursor().copy("COPY usage_daily FROM STDIN")  # kept: dropping it
    try:
        with lrm_engine.begin() as c:
            co.acquire_or_renew_lease(c, "a", 0.3)
        orphan.execute(_DAILY_ROW.format(value=1))
        copying.__enter__().write(b"tenant\t102\t1\t2026-11-24\t")  # would end the COPY
        bystander.execute("SELECT 1")  # a transaction of `lrm job run` on the same host
        with pytest.raises(sa.exc.OperationalError, match="lock timeout"), \
                lrm_engine.begin() as c:
            c.execute(sa.text("SET LOCAL lock_timeout = '200ms'"))
            c.execute(sa.text(_DAILY_ROW.format(value=2)))
        time.sleep(0.3)  # the point of the test is the lapsed lease
        with co.coordination_transaction(lrm_engine, 10) as c:
            state = co.acquire_or_renew_lease(c, "b", 10)
        assert state is not None and state.previous_holder == "a"
        with lrm_engine.begin() as c:
            outcome = co.end_sessions_of(c, "b", state.epoch, "a", silence_s=10)
        assert outcome == co.EndedSessions(ended=1, hidden=0)
        with lrm_engine.begin() as c:
            c.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
            c.execute(sa.text(_DAILY_ROW.format(value=2)))
        assert bystander.execute("SELECT 1").fetchone() == (1,)
        poll(lambda: not _session_alive(lrm_engine, orphan.info.backend_pid), 2.0)
        with co.coordination_transaction(lrm_engine, 10) as c:
            renewed = co.acquire_or_renew_lease(c, "b", 10)
        assert renewed is not None and renewed.previous_holder == "b"
        with lrm_engine.begin() as c, pytest.raises(FencedError):
            co.end_sessions_of(c, "a", 1, "b", silence_s=10)  # "a" no longer holds the lease
    finally:
        bystander.close()
        with contextlib.suppress(psycopg.Error):
            copying.__exit__(None, None, None)
        with contextlib.suppress(psycopg.Error):
            orphan.close()


def test_sessions_this_role_may_not_see_are_reported_not_ended(
        lrm_db_url: str, lrm_engine: sa.Engine) -> None:
    """Connected as a role that may not see another role's session state (no
    pg_read_all_stats), the new primary cannot tell whether its predecessor's sessions are in
    a transaction: it ends none and counts them as hidden (the instance logs that)."""
    suffix = uuid.uuid4().hex[:8]
    other, watcher = f"other_{suffix}", f"watcher_{suffix}"
    with lrm_engine.begin() as c:
        c.execute(sa.text(f"CREATE ROLE {other} LOGIN; CREATE ROLE {watcher} LOGIN; "
                          f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {watcher}"))
    as_role = sa.engine.make_url(lrm_db_url)
    orphan = psycopg.connect(libpq_url(as_role.set(username=other).render_as_string(False)),
                             application_name=co.serving_application_name("a"))
    engine = create_engine(as_role.set(username=watcher).render_as_string(False))
    try:
        orphan.execute("SELECT 1")  # inside a transaction, idle
        with co.coordination_transaction(lrm_engine, 10) as c:
            state = co.acquire_or_renew_lease(c, "b", 10)
        assert state is not None
        with engine.begin() as c:
            outcome = co.end_sessions_of(c, "b", state.epoch, "a", silence_s=10)
        assert outcome == co.EndedSessions(ended=0, hidden=1)
    finally:
        orphan.close()
        engine.dispose()
        with lrm_engine.begin() as c:
            c.execute(sa.text(f"DROP OWNED BY {watcher}; DROP ROLE {watcher}; "
                              f"DROP ROLE {other}"))

