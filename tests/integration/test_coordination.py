"""The lease, the job lock and the fences, on a real PostgreSQL (database clock)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import psycopg
import pytest
import sqlalchemy as sa

from lrm.domain.errors import FencedError
from lrm.store import coordination as co
from lrm.store.db import libpq_url


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


def _orphan_and_takeover(lrm_engine: sa.Engine,
                         lock: Callable[[sa.Connection], None]) -> float:
    """Lock the lease row in a transaction whose client then falls silent (as if cut off before
    its COMMIT arrived), show the row is locked, and return how long after that the peer "b"
    takes over. The orphan's COMMIT must fail: its session was ended by the server."""
    with lrm_engine.begin() as c:
        co.acquire_or_renew_lease(c, "a", 0.5)
    orphan = co.coordination_transaction(lrm_engine, 1.0)
    connection = orphan.__enter__()
    lock(connection)
    silent_since = time.monotonic()
    with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
        _lock_timeout_attempt(lrm_engine, "b")
    state = None
    while state is None and time.monotonic() - silent_since < 10:
        with contextlib.suppress(sa.exc.OperationalError):
            state = _lock_timeout_attempt(lrm_engine, "b")
    took = time.monotonic() - silent_since
    assert state is not None and (state.holder, state.epoch) == ("b", 2)
    with pytest.raises(sa.exc.DBAPIError, match="idle-in-transaction timeout"):
        orphan.__exit__(None, None, None)
    return took


def test_a_renew_cut_off_before_its_commit_does_not_block_the_takeover(
        lrm_engine: sa.Engine) -> None:
    """The renew's row lock is released when the server ends the silent session (1 s here),
    not when TCP notices (never, behind a black-holing switch)."""
    took = _orphan_and_takeover(lrm_engine,
                                lambda c: co.acquire_or_renew_lease(c, "a", 0.5) and None)
    assert took < 3.0, took


def test_a_fence_cut_off_before_its_commit_does_not_block_the_takeover(
        lrm_engine: sa.Engine) -> None:
    """A writing transaction that took the fence and then lost its client gives the lease row
    up after the fence's silence limit, and never commits."""
    took = _orphan_and_takeover(
        lrm_engine, lambda c: co.fence_lease(c, "a", 1, silence_s=1.0))
    assert took < 3.0, took


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
    bystander = psycopg.connect(libpq_url(lrm_db_url), application_name="lrm-cli-a")
    try:
        with lrm_engine.begin() as c:
            co.acquire_or_renew_lease(c, "a", 0.3)
        orphan.execute(_DAILY_ROW.format(value=1))
        copying = orphan.cursor().copy("COPY usage_daily FROM STDIN")  # kept: dropping it
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
            assert co.end_sessions_of(c, state.previous_holder) == 1
        with lrm_engine.begin() as c:
            c.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
            c.execute(sa.text(_DAILY_ROW.format(value=2)))
        assert bystander.execute("SELECT 1").fetchone() == (1,)
        with lrm_engine.connect() as c:
            assert c.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lrm-a'")
            ).scalar_one() == 0
        with co.coordination_transaction(lrm_engine, 10) as c:
            renewed = co.acquire_or_renew_lease(c, "b", 10)
        assert renewed is not None and renewed.previous_holder == "b"
    finally:
        bystander.close()
        with contextlib.suppress(psycopg.Error):
            orphan.close()
