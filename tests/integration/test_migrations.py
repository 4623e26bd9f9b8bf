"""The Alembic migrations and the SQLAlchemy model agree, and migrations round-trip."""

from __future__ import annotations

import json

import sqlalchemy as sa

from lrm.store import migrate
from lrm.store.db import create_engine
from lrm.store.schema import metadata


def test_migrations_match_the_model(lrm_engine: sa.Engine) -> None:
    """Upgrading to head yields exactly the schema the model declares (like `alembic check`)."""
    with lrm_engine.connect() as connection:
        assert migrate.model_differences(connection) == []
        assert migrate.current_revision(connection) == migrate.head_revision()


def test_migrations_give_the_model_s_keys_and_table_options(lrm_engine: sa.Engine) -> None:
    """What autogenerate does not compare: key column order, INCLUDE columns, table storage
    options (the TOAST table's too) and unlogged tables, as the model declares them, made by
    the migrations."""
    with lrm_engine.connect() as connection:
        for table in metadata.sorted_tables:
            key = table.primary_key
            made = connection.execute(sa.text(
                "SELECT pg_get_indexdef(conindid) FROM pg_constraint "
                "WHERE conrelid = CAST(:table AS regclass) AND contype = 'p'"),
                {"table": table.name}).scalar_one_or_none()
            if not key.columns:  # the staging table: no key to maintain while it is filled
                assert made is None, (table.name, made)
            else:
                columns = ", ".join(c.name for c in key.columns)
                include = key.dialect_options["postgresql"]["include"]
                wanted = f"({columns})" + (f" INCLUDE ({', '.join(include)})" if include
                                           else "")
                assert made is not None and made.endswith(wanted), (table.name, made)
            # The table's own options, and its TOAST table's (declared as "toast.<option>").
            options = connection.execute(sa.text(
                "SELECT coalesce(t.reloptions, '{}') || coalesce(ARRAY(SELECT 'toast.' || o "
                "FROM unnest(toast.reloptions) o), '{}') FROM pg_class t "
                "LEFT JOIN pg_class toast ON toast.oid = t.reltoastrelid "
                "WHERE t.oid = CAST(:table AS regclass)"), {"table": table.name}).scalar_one()
            declared = table.dialect_options["postgresql"]["with"] or {}
            assert sorted(options) == sorted(f"{k}={v}" for k, v in declared.items()), table.name
            persistence = connection.execute(sa.text(
                "SELECT relpersistence FROM pg_class WHERE oid = CAST(:table AS regclass)"),
                {"table": table.name}).scalar_one()
            assert persistence == ("u" if "UNLOGGED" in table._prefixes else "p"), table.name


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


def test_configuration_documents_survive_0002_both_ways(empty_db_url: str) -> None:
    """0002 moves each stored document (a full one and an edit of it) from jsonb into
    compressed bytes with its base; the samples read back unchanged; a downgrade writes each
    document back whole."""
    from datetime import UTC, datetime

    from lrm.store.config_samples import samples_between

    full = {"tenants": [{"DBID": 101, "name": "Acme"}], "persons": [{"DBID": 1, "state": 1}]}
    edit = {"$delta": {"base": 1, "changes": {"persons": {"ops": [{"add": [{"DBID": 2}]}]}},
                       "removed": []}}
    taken = [datetime(2026, 11, 24, h, tzinfo=UTC) for h in (0, 1)]
    engine = create_engine(empty_db_url)
    try:
        migrate.upgrade(engine, "0001")
        with engine.begin() as c:
            for k, document in enumerate((full, edit), start=1):
                c.execute(sa.text("INSERT INTO config_document (id, content_hash, document) "
                                  "VALUES (:id, :hash, CAST(:doc AS jsonb))"),
                          {"id": k, "hash": f"h{k}", "doc": json.dumps(document)})
                c.execute(sa.text("INSERT INTO config_sample (taken_at, document_id, "
                                  "instance_id, enabled_agents) VALUES (:t, :id, 'a', 1)"),
                          {"t": taken[k - 1], "id": k})
        migrate.upgrade(engine)
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT base_id FROM config_document ORDER BY id")
                             ).scalars().all() == [None, 1]
            samples = samples_between(c, taken[0], datetime(2026, 11, 25, tzinfo=UTC))
        assert [d for _, d in samples] == [full, {**full, "persons": [{"DBID": 2}]}]
        migrate.downgrade(engine, "0001")
        with engine.connect() as c:  # revision 0001 reads whole documents
            assert c.execute(sa.text("SELECT document FROM config_document ORDER BY id")
                             ).scalars().all() == [full, {**full, "persons": [{"DBID": 2}]}]
    finally:
        engine.dispose()
