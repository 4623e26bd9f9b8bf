"""Connecting to the LRM database: an external server from `lrm.database_url`, or the embedded
server under `lrm.data_dir` when no URL is configured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from lrm.domain.errors import DatabaseError
from lrm.store.embedded import EmbeddedPostgres

LRM_DATABASE = "lrm"


def sqlalchemy_url(url: str) -> str:
    """Accept plain `postgresql://` URLs (as psql does) and select the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The same URL without a SQLAlchemy driver suffix, for psycopg.connect()."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def database_errors(what: str = "the LRM database") -> Iterator[None]:
    """Turn driver errors into DatabaseError naming `what`, with the driver's first line."""
    try:
        yield
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise DatabaseError(f"{what}: {exc.__class__.__name__}: "
                            f"{detail[0] if detail else ''}") from exc


def create_engine(url: str, *, pool_size: int = 5, application_name: str = "lrm") -> sa.Engine:
    engine = sa.create_engine(
        sqlalchemy_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
        connect_args={"application_name": application_name, "connect_timeout": 5},
    )
    sa.event.listen(engine, "connect", _plan_for_the_parameters)
    _close_what_comes_back_after_dispose(engine)
    return engine


def _close_what_comes_back_after_dispose(engine: sa.Engine) -> None:
    """`engine.dispose()` closes the pooled connections, not those checked out at the time (a
    report build or a refresh abandoned in its thread when the report port closes): SQLAlchemy
    returns those to the old pool when their work ends, and they stay open until the garbage
    collector finds the pool. They are closed as they come back instead. (Not for a forked
    child's `dispose(close=False)`, which must leave the parent's connections alone: lrm does
    not fork with an engine open.)"""
    generation = 0

    def disposed(_engine: sa.Engine) -> None:
        nonlocal generation
        generation += 1

    def checked_out(_dbapi_connection: Any, record: Any, _proxy: object) -> None:
        record.info["engine_generation"] = generation

    def checked_in(dbapi_connection: Any, record: Any) -> None:
        # A record checked out between the pool's replacement and the event that counts the
        # dispose carries the old generation although it is the new pool's: invalidated, not
        # closed, it goes back empty and reconnects when next used.
        if (dbapi_connection is not None
                and record.info.get("engine_generation", generation) != generation):
            record.invalidate()

    sa.event.listen(engine, "engine_disposed", disposed)
    sa.event.listen(engine, "checkout", checked_out)
    sa.event.listen(engine, "checkin", checked_in)


def _plan_for_the_parameters(dbapi_connection: Any, _record: object) -> None:
    """psycopg prepares a statement after its fifth execution, and PostgreSQL may then switch
    to a generic plan that ignores the parameter values. For the report query that plan
    walked every row of the month through the date index (14 ms) instead of one tenant's
    rows through the primary key (0.9 ms). Custom plans cost a few tenths of a millisecond
    of planning and are right for any tenant size and date range. (A SET rather than the
    `options` connection parameter: that would replace options given in the URL or in
    PGOPTIONS.)"""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    dbapi_connection.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.autocommit = autocommit


def embedded_server(data_dir: Path) -> EmbeddedPostgres:
    return EmbeddedPostgres(data_dir / "pg")


def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    """The LRM DB URL: the configured one, or the embedded server's (started if needed, and the
    `lrm` database created on first use)."""
    if database_url:
        return database_url
    server = embedded_server(data_dir).start()
    ensure_database(server.url(), LRM_DATABASE)
    return server.url(LRM_DATABASE)


def ensure_database(admin_url: str, name: str, *, template: str | None = None) -> bool:
    """Create database `name` if it does not exist. Returns True when it was created."""
    engine = sa.create_engine(sqlalchemy_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
            if exists:
                return False
            suffix = f' TEMPLATE "{template}"' if template else ""
            connection.execute(sa.text(f'CREATE DATABASE "{name}"{suffix}'))
            return True
    except SQLAlchemyError as exc:
        raise DatabaseError(f"could not create database {name!r}: {exc.__class__.__name__}: "
                            f"{str(exc).splitlines()[0]}") from exc
    finally:
        engine.dispose()


def drop_database(admin_url: str, name: str) -> None:
    engine = sa.create_engine(sqlalchemy_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()
