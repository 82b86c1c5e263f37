"""Files the provider keeps (recordings, MMS media) are downloaded on demand and by the worker

Revision ID: media01
Revises: seen01
Create Date: 2026-12-02 19:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "media01"
down_revision = "seen01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attachment") as batch:
        batch.add_column(sa.Column("fetch_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("fetch_attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("fetch_error", sa.Text(), nullable=True))
        batch.create_index("ix_attachment_fetch_due_at", ["fetch_due_at"])
    # Files that arrived before this revision are queued too: with
    # [twilio] fetch_media on, the worker downloads what the provider still has.
    op.execute("UPDATE attachment SET fetch_due_at = CURRENT_TIMESTAMP WHERE sha256 IS NULL AND url IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("attachment") as batch:
        batch.drop_index("ix_attachment_fetch_due_at")
        batch.drop_column("fetch_error")
        batch.drop_column("fetch_attempts")
        batch.drop_column("fetch_due_at")
