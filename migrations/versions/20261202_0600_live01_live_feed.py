"""The live-update feed: changes announced to consoles and chat widgets

Revision ID: live01
Revises: 0003s
Create Date: 2026-12-02 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "live01"
down_revision = "0003s"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "live_event",
        sa.Column("id", Id, nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_event")),
        # Ids are server-sent event ids: never given twice, even after pruning.
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("live_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_live_event_topic_id"), ["topic", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_live_event_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("live_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_live_event_created_at"))
        batch_op.drop_index(batch_op.f("ix_live_event_topic_id"))
    op.drop_table("live_event")
