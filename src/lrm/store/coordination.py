"""The HA lease, the nightly job lock and the fences that guard every writing transaction.

Every decision is one conditional statement on the database clock (`now()`), never a Python check
followed by a write (see src/lrm/store/sql/)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from lrm.domain.errors import FencedError
from lrm.store.sql import load_sql

PRIMARY_LEASE = "primary"
NIGHTLY_LOCK = "nightly"

# Only sessions inside a transaction are ended (CASE: SQL does not promise to evaluate AND
# left to right). `state` is NULL for the sessions of a role whose details this one may not see.
_END_SESSIONS = sa.text(
    "SELECT count(*) FILTER (WHERE CASE WHEN xact_start IS NOT NULL "
    "                              THEN pg_terminate_backend(pid) ELSE false END) AS ended, "
    "       count(*) FILTER (WHERE state IS NULL) AS hidden "
    "FROM pg_stat_activity WHERE application_name = :application_name "
    "AND datname = current_database() AND pid <> pg_backend_pid()")
_LOCK_LEASE = sa.text("SELECT holder FROM ha_lease WHERE name = :name FOR UPDATE")
_TIMEOUTS = ("idle_in_transaction_session_timeout", "transaction_timeout")


@dataclass(frozen=True)
class LeaseState:
    holder: str | None
    epoch: int
    expires_at: datetime | None
    db_now: datetime
    released_by: str | None = None
    previous_holder: str | None = None  # set by acquire_or_renew_lease only

    @property
    def expires_in_s(self) -> float:
        if self.expires_at is None or self.holder is None:
            return 0.0
        return max(0.0, (self.expires_at - self.db_now).total_seconds())


@dataclass(frozen=True)
class LockState:
    holder: str | None
    epoch: int
    run_id: int | None
    acquired_at: datetime | None
    heartbeat_at: datetime | None
    db_now: datetime


def abort_if_silent(connection: sa.Connection, silence_s: float) -> None:
    """From here to the end of the current transaction, have the server end the session (and so
    abort the transaction) when it waits on the client for `silence_s`.

    A lease or job-lock row locked by a client that is cut off before its COMMIT arrives stays
    locked as long as the server's session lives, and behind a switch that black-holes the
    traffic TCP never ends that session: the peer's takeover would wait on the lock forever.
    Every transaction that locks one of these rows sets this first (a fence: just before its
    commit), with the lease TTL: a client silent for that long has lost its lease anyway, and
    its transaction never commits. `idle_in_transaction_session_timeout` covers a client
    silent between statements; `transaction_timeout` (PostgreSQL 17 and later; counted from
    here) one cut off in the middle of sending a statement, which the server sees as busy."""
    ms = str(max(1, round(silence_s * 1000)))
    version = connection.dialect.server_version_info or (0,)
    names = _TIMEOUTS if version >= (17,) else _TIMEOUTS[:1]
    connection.execute(sa.text("SELECT " + ", ".join(
        f"set_config('{name}', :ms, true)" for name in names)), {"ms": ms})


@contextmanager
def coordination_transaction(engine: sa.Engine, silence_s: float) -> Iterator[sa.Connection]:
    """A transaction for lease or job-lock statements (see `abort_if_silent`)."""
    with engine.begin() as connection:
        abort_if_silent(connection, silence_s)
        yield connection


def acquire_or_renew_lease(connection: sa.Connection, me: str, ttl_s: float,
                           name: str = PRIMARY_LEASE) -> LeaseState | None:
    """Renew our lease or take a free/expired one. None when another instance holds it.
    `previous_holder` is the holder the statement replaced: the row is locked first, so that
    it is the latest committed one (a snapshot read could still show an instance that has just
    released the lease)."""
    previous = connection.execute(_LOCK_LEASE, {"name": name}).scalar()
    row = connection.execute(load_sql("lease_acquire_or_renew"),
                             {"name": name, "me": me, "ttl_s": ttl_s}).first()
    if row is None:
        return None
    return LeaseState(row.holder, row.epoch, row.expires_at, row.db_now,
                      previous_holder=previous)


def serving_application_name(instance_id: str) -> str:
    """The PostgreSQL application_name of every LRM DB session of `lrm serve` on
    `instance_id`."""
    return _application_name("serve", instance_id)


def command_application_name(instance_id: str) -> str:
    """The application_name of a command's sessions (`lrm job run`, `lrm report` …): never
    ended by a new primary."""
    return _application_name("cli", instance_id)


def _application_name(kind: str, instance_id: str) -> str:
    # PostgreSQL keeps 63 bytes of printable ASCII: a longer or other id is named by a digest,
    # so that the name stays exact and one instance's never matches another's.
    name = f"lrm-{kind}-{instance_id}"
    if len(name) <= 63 and all(" " <= c <= "~" for c in name):
        return name
    return f"lrm-{kind}-#{hashlib.sha256(instance_id.encode()).hexdigest()[:40]}"


@dataclass(frozen=True)
class EndedSessions:
    ended: int
    hidden: int  # sessions whose state this database role may not see (so not ended)


def end_sessions_of(connection: sa.Connection, me: str, epoch: int, predecessor: str, *,
                    silence_s: float) -> EndedSessions:
    """End the sessions `lrm serve` on `predecessor` has inside a transaction, while `me`
    holds the lease with `epoch` (FencedError otherwise: the predecessor may hold it again, and
    its work is then legitimate).

    Sessions cut off by a partition, or belonging to a frozen process, can hold row locks (a
    half-written date's results) that would block this primary's job until TCP notices, which
    may be never. Nothing fenced in them can commit any more: results, run states and
    configuration samples are committed under a share lock of the lease row, which now has a
    higher epoch (a transaction already holding that lock would have held up the takeover).
    Unfenced writes under way (a provisioned-count change on the report port the predecessor
    was closing, a purge of old minutes) fail, and their caller sees the error. Does not wait
    for the sessions to end: a statement blocked on their locks goes on when they do."""
    fence_lease(connection, me, epoch, silence_s=silence_s)
    row = connection.execute(_END_SESSIONS, {
        "application_name": serving_application_name(predecessor)}).one()
    return EndedSessions(int(row.ended), int(row.hidden))


def release_lease(connection: sa.Connection, me: str, epoch: int,
                  name: str = PRIMARY_LEASE) -> bool:
    return connection.execute(load_sql("lease_release"),
                              {"name": name, "me": me, "epoch": epoch}).first() is not None


def read_lease(connection: sa.Connection, name: str = PRIMARY_LEASE) -> LeaseState | None:
    row = connection.execute(load_sql("lease_read"), {"name": name}).first()
    if row is None:
        return None
    return LeaseState(row.holder, row.epoch, row.expires_at, row.db_now, row.released_by)


def fence_lease(connection: sa.Connection, me: str, epoch: int, *, silence_s: float,
                name: str = PRIMARY_LEASE) -> None:
    """Raise FencedError unless `me` still holds the lease with `epoch` (row share-locked until the
    surrounding transaction ends, which the server forces after `silence_s` of client
    silence: see `abort_if_silent`)."""
    abort_if_silent(connection, silence_s)
    row = connection.execute(load_sql("lease_fence"),
                             {"name": name, "me": me, "epoch": epoch}).first()
    if row is None:
        current = read_lease(connection, name)
        detail = ("nobody holds the lease" if current is None or current.holder is None
                  else f"the lease is held by {current.holder} with epoch {current.epoch}")
        raise FencedError(f"{me} started with epoch {epoch} but {detail}")


def acquire_job_lock(connection: sa.Connection, me: str, epoch: int, stale_s: float,
                     name: str = NIGHTLY_LOCK) -> LockState | None:
    """Take the job lock; None when a live holder has it (see `read_job_lock`)."""
    row = connection.execute(load_sql("job_lock_acquire"),
                             {"name": name, "me": me, "epoch": epoch, "stale_s": stale_s}).first()
    if row is None:
        return None
    return read_job_lock(connection, name)


def heartbeat_job_lock(connection: sa.Connection, me: str, run_id: int | None = None,
                       name: str = NIGHTLY_LOCK) -> bool:
    return connection.execute(load_sql("job_lock_heartbeat"),
                              {"name": name, "me": me, "run_id": run_id}).first() is not None


def release_job_lock(connection: sa.Connection, me: str, name: str = NIGHTLY_LOCK) -> None:
    connection.execute(load_sql("job_lock_release"), {"name": name, "me": me})


def read_job_lock(connection: sa.Connection, name: str = NIGHTLY_LOCK) -> LockState | None:
    row = connection.execute(load_sql("job_lock_read"), {"name": name}).first()
    if row is None:
        return None
    return LockState(row.holder, row.epoch, row.run_id, row.acquired_at, row.heartbeat_at,
                     row.db_now)


def fence_job_lock(connection: sa.Connection, me: str, *, silence_s: float,
                   name: str = NIGHTLY_LOCK) -> None:
    """Raise FencedError unless `me` still holds the job lock (share-locked as `fence_lease`)."""
    abort_if_silent(connection, silence_s)
    if connection.execute(load_sql("job_lock_fence"), {"name": name, "me": me}).first() is None:
        current = read_job_lock(connection, name)
        holder = current.holder if current else None
        raise FencedError(f"{me} no longer holds the job lock (holder: {holder or 'nobody'})")
