"""config_document.compiled: a full document's counting attributes as arrays

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Documents stored before have no compiled form: the job reads them from the JSON.
    op.add_column('config_document', sa.Column(
        'compiled', sa.LargeBinary(), nullable=True,
        comment="a full document's attributes the counting core reads, as arrays "
                "(lrm.store.compiled_config); NULL for an edit of another document"))


def downgrade() -> None:
    op.drop_column('config_document', 'compiled')
