"""config_document: the document as compressed JSON bytes (body, base_id), its compiled form,
and content_hash made of the lists' hashes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:40:00
"""

import json
import zlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_HASH = "sha256 of the canonical JSON: identical samples share one document"
_NEW_HASH = ("sha256 of the values and list hashes (canonical JSON): identical samples share "
             "one document")
_BODY = ("the stored JSON, zlib-compressed: a full document, or {\"$delta\": …} for an edit of "
         "base_id (bytes: a provider's document outgrows jsonb's 256 MB)")
_DELTA = "$delta"


def upgrade() -> None:
    op.add_column('config_document', sa.Column('body', sa.LargeBinary(), nullable=True,
                                               comment=_BODY))
    op.add_column('config_document', sa.Column(
        'base_id', sa.BigInteger(), nullable=True, comment="for an edit: the document it edits"))
    op.add_column('config_document', sa.Column(
        'compiled', sa.LargeBinary(), nullable=True,
        comment="a full document's attributes the counting core reads, as arrays "
                "(lrm.store.compiled_config); NULL for an edit of another document"))
    # Documents stored before have no compiled form: the job reads them from their JSON.
    connection = op.get_bind()
    for row in connection.execute(sa.text("SELECT id, document FROM config_document")):
        base = row.document.get(_DELTA, {}).get("base")
        connection.execute(
            sa.text("UPDATE config_document SET body = :body, base_id = :base WHERE id = :id"),
            {"id": row.id, "base": base,
             "body": zlib.compress(json.dumps(row.document).encode(), 1)})
    op.alter_column('config_document', 'body', nullable=False, existing_type=sa.LargeBinary(),
                    existing_comment=_BODY)
    # Already compressed: PostgreSQL need not try again.
    op.execute("ALTER TABLE config_document ALTER COLUMN body SET STORAGE EXTERNAL")
    op.create_foreign_key(op.f('fk_config_document_base_id_config_document'), 'config_document',
                          'config_document', ['base_id'], ['id'])
    op.drop_column('config_document', 'document')
    # Hashes of documents stored before differ from the new ones: the first sample after the
    # upgrade is stored once more, nothing else changes.
    op.alter_column('config_document', 'content_hash', existing_type=sa.String(length=64),
                    existing_nullable=False, comment=_NEW_HASH)


def downgrade() -> None:
    op.alter_column('config_document', 'content_hash', existing_type=sa.String(length=64),
                    existing_nullable=False, comment=_OLD_HASH)
    op.add_column('config_document', sa.Column('document', postgresql.JSONB(), nullable=True))
    connection = op.get_bind()
    for row in connection.execute(sa.text("SELECT id, body FROM config_document")):
        connection.execute(
            sa.text("UPDATE config_document SET document = CAST(:document AS jsonb) "
                    "WHERE id = :id"),
            {"id": row.id, "document": zlib.decompress(row.body).decode()})
    op.alter_column('config_document', 'document', nullable=False,
                    existing_type=postgresql.JSONB())
    op.drop_constraint(op.f('fk_config_document_base_id_config_document'), 'config_document',
                       type_='foreignkey')
    op.drop_column('config_document', 'compiled')
    op.drop_column('config_document', 'base_id')
    op.drop_column('config_document', 'body')
