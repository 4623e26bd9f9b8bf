"""config_document.compiled: a full document's counting attributes as arrays; content_hash
is now made of the lists' hashes

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

_OLD_HASH = "sha256 of the canonical JSON: identical samples share one document"
_NEW_HASH = ("sha256 of the values and list hashes (canonical JSON): identical samples share "
             "one document")


def upgrade() -> None:
    # Documents stored before have no compiled form: the job reads them from the JSON.
    op.add_column('config_document', sa.Column(
        'compiled', sa.LargeBinary(), nullable=True,
        comment="a full document's attributes the counting core reads, as arrays "
                "(lrm.store.compiled_config); NULL for an edit of another document"))
    # Hashes of documents stored before differ from the new ones: the first sample after the
    # upgrade is stored once more, nothing else changes.
    op.alter_column('config_document', 'content_hash', existing_type=sa.String(length=64),
                    existing_nullable=False, comment=_NEW_HASH)


def downgrade() -> None:
    op.alter_column('config_document', 'content_hash', existing_type=sa.String(length=64),
                    existing_nullable=False, comment=_OLD_HASH)
    op.drop_column('config_document', 'compiled')
