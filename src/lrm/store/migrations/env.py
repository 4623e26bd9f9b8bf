"""Alembic environment: runs on the connection lrm hands over (see lrm.store.migrate)."""

from alembic import context

from lrm.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, compare_type=True,
                  compare_server_default=True, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
