"""The search outbox keeps what the indexer did with each change

Revision ID: 0003s
Revises: 0002
Create Date: 2026-12-02 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003s"
down_revision = "0002"
branch_labels = None
depends_on = None


def _on_sqlite() -> str:
    """Rebuild the table on SQLite, where AUTOINCREMENT can only be had so; PostgreSQL alters it in place."""
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def upgrade() -> None:
    # Rows are no longer deleted when indexed: a rebuild replays every change
    # made since it started, including those the live indexer has already
    # sent to the old index. The indexer purges done rows no rebuild needs.
    # Their ids are the documents' versions, so on SQLite they must never be
    # reused (AUTOINCREMENT; the table is rebuilt for it).
    with op.batch_alter_table(
        "search_outbox", schema=None, recreate=_on_sqlite(), table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.add_column(sa.Column("state", sa.String(length=8), server_default="pending", nullable=False))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_search_outbox_state_id"), ["state", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table(
        "search_outbox", schema=None, recreate=_on_sqlite(), table_kwargs={"sqlite_autoincrement": False}
    ) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_outbox_state_id"))
        batch_op.drop_column("indexed_at")
        batch_op.drop_column("error")
        batch_op.drop_column("attempts")
        batch_op.drop_column("state")
