"""Schema migrations (Alembic), driven programmatically so `lrm db upgrade` works from an
installed package without an alembic.ini."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from lrm.store.schema import metadata

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@contextmanager
def _config(engine: Engine) -> Iterator[Config]:
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        yield config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the LRM DB schema to `revision` (idempotent)."""
    with _config(engine) as config:
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    with _config(engine) as config:
        command.downgrade(config, revision)


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


def model_differences(connection: Connection) -> list[Any]:
    """What autogenerate would change: empty when the migrations match the model."""
    context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                           "compare_server_default": True})
    return list(compare_metadata(context, metadata))


def autogenerate(engine: Engine, message: str) -> None:
    """Developer helper: write a new revision from the model's differences."""
    with _config(engine) as config:
        command.revision(config, message=message, autogenerate=True)
