"""Hand-written SQL, one statement per file, loaded once (bound parameters only)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import sqlalchemy as sa


@cache
def load_sql(name: str) -> sa.TextClause:
    return sa.text(files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8"))
