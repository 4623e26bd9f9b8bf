"""config_document: the document as compressed JSON bytes (body, base_id), its compiled form,
and content_hash made of the lists' hashes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:40:00
"""

import json
import zlib
from collections.abc import Sequence
from typing import Any

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


def _apply(base: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """The document an edit stands for (as lrm.store.config_samples applies it; copied here so
    that the migration does not change when the module does)."""
    document = {k: v for k, v in base.items() if k not in delta["removed"]}
    for key, change in delta["changes"].items():
        if "value" in change:
            document[key] = change["value"]
            continue
        new: list[Any] = []
        for edit in change["ops"]:
            if "keep" in edit:
                new.extend(base[key][edit["keep"][0]:edit["keep"][1]])
            else:
                new.extend(edit["add"])
        document[key] = new
    return document


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
    # One row at a time: a provider's document is hundreds of megabytes as Python objects.
    connection = op.get_bind()
    for (document_id,) in connection.execute(
            sa.text("SELECT id FROM config_document ORDER BY id")).all():
        document = connection.execute(sa.text("SELECT document FROM config_document "
                                              "WHERE id = :id"), {"id": document_id}
                                      ).scalar_one()
        connection.execute(
            sa.text("UPDATE config_document SET body = :body, base_id = :base WHERE id = :id"),
            {"id": document_id, "base": document.get(_DELTA, {}).get("base"),
             "body": zlib.compress(json.dumps(document).encode(), 1)})
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
    # Revision 0001 reads every document whole: an edit is written back as the document it
    # stands for (bases first: ids grow with time). Kept in memory: only documents that others
    # edit.
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, base_id FROM config_document ORDER BY id")).all()
    bases = {row.base_id for row in rows if row.base_id is not None}
    whole: dict[int, dict[str, Any]] = {}
    for row in rows:
        body = connection.execute(sa.text("SELECT body FROM config_document WHERE id = :id"),
                                  {"id": row.id}).scalar_one()
        document = json.loads(zlib.decompress(body))
        if row.base_id is not None:
            document = _apply(whole[row.base_id], document[_DELTA])
        if row.id in bases:
            whole[row.id] = document
        connection.execute(
            sa.text("UPDATE config_document SET document = CAST(:document AS jsonb) "
                    "WHERE id = :id"), {"id": row.id, "document": json.dumps(document)})
    op.alter_column('config_document', 'document', nullable=False,
                    existing_type=postgresql.JSONB())
    op.drop_constraint(op.f('fk_config_document_base_id_config_document'), 'config_document',
                       type_='foreignkey')
    op.drop_column('config_document', 'compiled')
    op.drop_column('config_document', 'base_id')
    op.drop_column('config_document', 'body')
