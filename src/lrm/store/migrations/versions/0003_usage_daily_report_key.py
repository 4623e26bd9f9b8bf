"""usage_daily: the primary key in (level, subject, date, item) order, carrying the value and
peak time (a report's date range of a subject is one index-only range read); an autovacuum
after inserts alone

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 08:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE usage_daily DROP CONSTRAINT pk_usage_daily, "
               "ADD CONSTRAINT pk_usage_daily PRIMARY KEY (level, subject_id, business_date, "
               "item_id) INCLUDE (peak_value, peak_time)")
    op.execute("ALTER TABLE usage_daily SET (autovacuum_vacuum_insert_scale_factor = 0, "
               "autovacuum_vacuum_insert_threshold = 10000)")


def downgrade() -> None:
    op.execute("ALTER TABLE usage_daily RESET (autovacuum_vacuum_insert_scale_factor, "
               "autovacuum_vacuum_insert_threshold)")
    op.execute("ALTER TABLE usage_daily DROP CONSTRAINT pk_usage_daily, "
               "ADD CONSTRAINT pk_usage_daily PRIMARY KEY (level, subject_id, item_id, "
               "business_date)")
