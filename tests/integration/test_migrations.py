"""The Alembic migrations and the SQLAlchemy model agree, and migrations round-trip."""

from __future__ import annotations

import sqlalchemy as sa

from lrm.store import migrate
from lrm.store.db import create_engine


def test_migrations_match_the_model(lrm_engine: sa.Engine) -> None:
    """Upgrading to head yields exactly the schema the model declares (like `alembic check`)."""
    with lrm_engine.connect() as connection:
        assert migrate.model_differences(connection) == []
        assert migrate.current_revision(connection) == migrate.head_revision()


def test_downgrade_then_upgrade_round_trips(empty_db_url: str) -> None:
    """`downgrade base` removes every table and `upgrade head` brings back the same schema."""
    engine = create_engine(empty_db_url)
    try:
        migrate.upgrade(engine)
        migrate.downgrade(engine, "base")
        with engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names()) - {"alembic_version"}
            assert tables == set()
        migrate.upgrade(engine)
        with engine.connect() as connection:
            assert migrate.model_differences(connection) == []
    finally:
        engine.dispose()


def test_upgrade_is_idempotent(lrm_engine: sa.Engine) -> None:
    """Running `lrm db upgrade` on an up-to-date database changes nothing."""
    migrate.upgrade(lrm_engine)
    with lrm_engine.connect() as connection:
        assert migrate.current_revision(connection) == migrate.head_revision()
