"""usage_minute_staged: an unlogged table that several connections fill with a run's
per-minute rows while the count goes on, moved into usage_minute by the run's transaction

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'usage_minute_staged',
        sa.Column('business_date', sa.Date(), nullable=False),
        sa.Column('level', sa.String(length=16), nullable=False),
        sa.Column('subject_id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('item_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('day_start', sa.DateTime(timezone=True), nullable=False,
                  comment="UTC instant of the business day's first minute"),
        sa.Column('peaks', postgresql.ARRAY(sa.Integer()), nullable=False,
                  comment='per-minute peaks, one per minute of the business day (1380/1440/1500)'),
        sa.Column('run_id', sa.BigInteger(), nullable=False),
        sa.Column('batch', sa.Integer(), nullable=False, comment="the run's write batch"),
        prefixes=['UNLOGGED'],
        postgresql_with={'autovacuum_enabled': 'false', 'toast.autovacuum_enabled': 'false'},
    )


def downgrade() -> None:
    op.drop_table('usage_minute_staged')
