"""The inbox: how long each customer has waited, and indexes for every inbox view

Revision ID: console01
Revises: a7d3e1f0c2b4
Create Date: 2026-12-02 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "console01"
down_revision = "a7d3e1f0c2b4"
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_conversation_status_waiting_since_id": ["status", "waiting_since", "id"],
    "ix_conversation_status_last_activity_at_id": ["status", "last_activity_at", "id"],
    "ix_conversation_status_assignee_id_waiting_since_id": ["status", "assignee_id", "waiting_since", "id"],
    "ix_conversation_status_assignee_id_last_activity_at_id": ["status", "assignee_id", "last_activity_at", "id"],
}


def upgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True))
    # A conversation not closed waits since its oldest inbound message that
    # no outbound one followed.
    op.execute(
        """
        UPDATE conversation SET waiting_since = (
            SELECT min(i.occurred_at) FROM interaction i
            WHERE i.conversation_id = conversation.id AND i.direction = 'inbound'
              AND NOT EXISTS (
                SELECT 1 FROM interaction o
                WHERE o.conversation_id = i.conversation_id AND o.direction = 'outbound'
                  AND o.occurred_at >= i.occurred_at))
        WHERE status <> 'closed'
        """
    )
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        for name, columns in _INDEXES.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        for name in _INDEXES:
            batch_op.drop_index(name)
        batch_op.drop_column("waiting_since")
